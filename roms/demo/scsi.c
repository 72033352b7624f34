/* SCSI disks through the Plus's NCR 5380, driven as the Plus ROM's SCSI Manager does: polled
 * (the Plus wires neither IRQ nor DRQ to the CPU), arbitration as ID 7, selection without ATN
 * that waits only 125 polls for BSY, the command by programmed REQ/ACK handshakes, data in by
 * pseudo-DMA (DMA mode, start initiator receive, BSR.DRQ polled before each byte read at the
 * DACK address), then status and message by programmed I/O.
 *
 * Errors are the SCSI Manager's result codes (Inside Macintosh IV, "The SCSI Manager"). */
#include "demo.h"

/* Register r reads at $580000 + r * $10 and writes at $580001 + r * $10; A9 is DACK. */
#define SCSI_RD(r) REG8(0x580000UL + (r) * 0x10UL)
#define SCSI_WR(r) REG8(0x580001UL + (r) * 0x10UL)
#define SCSI_DMA_RD REG8(0x580200UL)
enum { R_DATA, R_ICR, R_MR, R_TCR, R_CSR, R_BSR, R_IDR, R_RESET };
/* write-only meanings of registers 4 and 7 */
#define W_SER R_CSR
#define W_START_RX R_RESET

#define ICR_RST 0x80
#define ICR_AIP 0x40
#define ICR_LA 0x20
#define ICR_ACK 0x10
#define ICR_BSY 0x08
#define ICR_SEL 0x04
#define ICR_DBUS 0x01
#define MR_ARB 0x01
#define MR_DMA 0x02
#define CSR_BSY 0x40
#define CSR_REQ 0x20
#define BSR_DRQ 0x40
#define BSR_PHASE 0x08
/* TCR phases (MSG C/D I/O) */
#define PH_DATA_IN 1
#define PH_COMMAND 2
#define PH_STATUS 3
#define PH_MSG_IN 7

#define OUR_ID 7
#define REQ_POLLS 50000U /* the ROM's ~0.2 s wait for REQ */

/* Waits for REQ to be `level`; 0 on time-out. */
static u8 wait_req(u8 level)
{
    for (u16 n = REQ_POLLS; n; n--)
        if (((SCSI_RD(R_CSR) & CSR_REQ) != 0) == level) return 1;
    return 0;
}

/* Bus free, initiator idle. */
static void release(void)
{
    SCSI_WR(R_ICR) = 0;
    SCSI_WR(R_MR) = 0;
    SCSI_WR(R_TCR) = 0;
}

/* After a failure mid-command a target may still hold the bus: reset it (SCSIReset). */
static void bus_reset(void)
{
    SCSI_WR(R_ICR) = ICR_RST;
    for (volatile u16 n = 0; n < 100; n++) {
    }
    SCSI_WR(R_ICR) = 0;
    (void)SCSI_RD(R_RESET);
    release();
}

/* Arbitration as ID 7, then selection of `id`. Returns 0, scArbNBErr (3) or scCommErr (2:
 * no target answered selection). */
static s16 select(u8 id)
{
    release();
    SCSI_WR(R_DATA) = 1 << OUR_ID;
    SCSI_WR(R_MR) = MR_ARB;
    u16 n;
    for (n = 1000; n && !(SCSI_RD(R_ICR) & ICR_AIP); n--) {
    }
    if (!n) {
        release();
        return 3;
    }
    for (volatile u8 d = 0; d < 8; d++) { /* arbitration delay, > 2.2 us */
    }
    /* lost arbitration, or our ID is not on the bus */
    if ((SCSI_RD(R_ICR) & ICR_LA) || !(SCSI_RD(R_DATA) & (1 << OUR_ID))) {
        release();
        return 3;
    }
    SCSI_WR(R_ICR) = ICR_SEL;
    SCSI_WR(R_TCR) = 0;
    SCSI_WR(R_DATA) = (u8)((1 << OUR_ID) | (1 << id));
    SCSI_WR(R_ICR) = ICR_BSY | ICR_SEL | ICR_DBUS;
    SCSI_WR(R_MR) = 0;
    SCSI_WR(W_SER) = 0;
    SCSI_WR(R_ICR) = ICR_SEL | ICR_DBUS; /* release BSY: the target answers with its own */
    for (n = 125; n && !(SCSI_RD(R_CSR) & CSR_BSY); n--) {
    }
    SCSI_WR(R_ICR) = 0;
    if (!n) {
        release();
        return 2;
    }
    return 0;
}

/* Sends one byte of the current (output) phase with the REQ/ACK handshake. */
static s16 pio_out(u8 b)
{
    if (!wait_req(1)) return 9; /* scBusTOErr */
    if (!(SCSI_RD(R_BSR) & BSR_PHASE)) return 5; /* scPhaseErr */
    SCSI_WR(R_DATA) = b;
    SCSI_WR(R_ICR) = ICR_DBUS;
    SCSI_WR(R_ICR) = ICR_DBUS | ICR_ACK;
    if (!wait_req(0)) return 9;
    SCSI_WR(R_ICR) = 0;
    return 0;
}

/* Receives one byte of the current (input) phase with the REQ/ACK handshake. */
static s16 pio_in(u8 *b)
{
    if (!wait_req(1)) return 9;
    if (!(SCSI_RD(R_BSR) & BSR_PHASE)) return 5;
    *b = SCSI_RD(R_DATA);
    SCSI_WR(R_ICR) = ICR_ACK;
    if (!wait_req(0)) return 9;
    SCSI_WR(R_ICR) = 0;
    return 0;
}

/* Status and message phases (SCSIComplete). Data the target still offers is drained by PIO
 * until the status phase, as the ROM does. Returns 0 with the status byte in *status. */
static s16 complete(u8 *status)
{
    u8 msg, junk;
    for (u16 drained = 0;; drained++) {
        SCSI_WR(R_TCR) = PH_STATUS;
        if (!wait_req(1)) return 9;
        if (SCSI_RD(R_BSR) & BSR_PHASE) break;
        if (drained > 1024) return 10; /* scComplPhaseErr */
        SCSI_WR(R_TCR) = PH_DATA_IN;
        s16 e = pio_in(&junk);
        if (e) return e;
    }
    s16 e = pio_in(status);
    if (e) return e;
    SCSI_WR(R_TCR) = PH_MSG_IN;
    e = pio_in(&msg);
    if (e) return e;
    release();
    return 0;
}

/* READ(6) of `count` 512-byte blocks at `lba` into buf. Returns 0, a SCSI Manager error, or
 * 0x100 | status for a status other than GOOD. */
static s16 read6(u8 id, u32 lba, u8 count, u8 *buf)
{
    const u8 cdb[6] = {0x08, (u8)((lba >> 16) & 0x1F), (u8)(lba >> 8), (u8)lba, count, 0};
    s16 e = select(id);
    if (e) return e;
    SCSI_WR(R_TCR) = PH_COMMAND;
    for (u8 i = 0; i < 6 && !e; i++) e = pio_out(cdb[i]);
    if (e) goto fail;
    SCSI_WR(R_TCR) = PH_DATA_IN;
    if (!wait_req(1)) {
        e = 9;
        goto fail;
    }
    if (SCSI_RD(R_BSR) & BSR_PHASE) {
        /* pseudo-DMA: DRQ is polled before every byte */
        SCSI_WR(R_MR) = MR_DMA;
        SCSI_WR(W_START_RX) = 0;
        u16 len = (u16)count * 512;
        for (u16 i = 0; i < len; i++) {
            u16 n;
            for (n = REQ_POLLS; n && !(SCSI_RD(R_BSR) & BSR_DRQ); n--) {
            }
            if (!n) {
                e = 9;
                goto fail;
            }
            buf[i] = SCSI_DMA_RD;
        }
        SCSI_WR(R_MR) = 0;
    }
    u8 status;
    e = complete(&status);
    if (e) goto fail;
    return status ? (s16)(0x100 | status) : 0;
fail:
    bus_reset();
    return e;
}

static u16 be16(const u8 *p)
{
    return (u16)((p[0] << 8) | p[1]);
}

static u32 be32(const u8 *p)
{
    return ((u32)be16(p) << 16) | be16(p + 2);
}

/* Probes SCSI ID `id`: SCSI_NONE if no target answers; otherwise reads block 0 and, for a
 * partitioned disk (driver descriptor 'ER'), walks the partition map ('PM' entries from block
 * 1) to the first Apple_HFS partition; a disk without a map is taken as a bare volume. Then
 * block 2 of the volume goes to block2. Returns 0, SCSI_NO_HFS or an error. */
s16 scsi_probe(u8 id, u8 *block2)
{
    u8 *buf = block2;
    s16 e = read6(id, 0, 1, buf);
    if (e) return e;
    u32 base = 0;
    if (be16(buf) == 0x4552) {
        u32 entries = 1;
        u8 found = 0;
        for (u32 blk = 1; blk <= entries && blk < 64 && !found; blk++) {
            e = read6(id, blk, 1, buf);
            if (e) return e;
            if (be16(buf) != 0x504D) break; /* 'PM' */
            if (blk == 1) entries = be32(buf + 4);
            static const char hfs[] = "Apple_HFS";
            u8 i = 0;
            while (hfs[i] && buf[0x30 + i] == (u8)hfs[i]) i++;
            if (!hfs[i] && !buf[0x30 + i]) {
                base = be32(buf + 8);
                found = 1;
            }
        }
        if (!found) return SCSI_NO_HFS;
    }
    return read6(id, base + 2, 1, block2);
}

/* A plain v4 server (the original protocol, no reader claim): connects the socket, receives the
 * eventfds, maps and validates the SHM, then per frame waits on the eventfd, reads
 * frames[ready_index] and acknowledges with a KEY message (keycode = first byte). */
#include "macemu_ipc.h"
#include <stdlib.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv) {
    if (argc != 3) return 64;
    uint32_t pid = (uint32_t)atoi(argv[1]);
    int frames = atoi(argv[2]);
    char name[64], path[108];
    snprintf(name, sizeof name, MACEMU_VIDEO_SHM_PREFIX "%u", pid);
    snprintf(path, sizeof path, MACEMU_CONTROL_SOCK_PREFIX "%u" MACEMU_CONTROL_SOCK_SUFFIX, pid);
    int fd = shm_open(name, O_RDWR, 0);
    if (fd < 0) { perror("shm_open"); return 1; }
    MacEmuIPCBuffer *b = mmap(NULL, sizeof(MacEmuIPCBuffer), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (b == MAP_FAILED) { perror("mmap"); return 1; }
    if (macemu_validate_ipc_buffer(b, pid) != 0) { fprintf(stderr, "validate failed\n"); return 1; }

    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("connect"); return 1; }
    char data = 0, ctl[CMSG_SPACE(sizeof(int) * 2)];
    struct iovec iov = { &data, 1 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
    if (recvmsg(s, &msg, 0) != 1 || data != 'E') { fprintf(stderr, "handshake\n"); return 1; }
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int) * 2)) { fprintf(stderr, "fds\n"); return 1; }
    int fds[2];
    memcpy(fds, CMSG_DATA(c), sizeof fds);

    int got = 0, bad = 0;
    uint64_t last = 0;
    MacEmuKeyInput ack = { { MACEMU_INPUT_KEY, MACEMU_KEY_DOWN, 0 }, 0, 0, 0 };
    if (send(s, &ack, sizeof ack, MSG_NOSIGNAL) != sizeof ack) return 1; /* "ready for frame 1" */
    while (got < frames) {
        struct pollfd pf = { fds[0], POLLIN, 0 };
        if (poll(&pf, 1, 5000) != 1) { fprintf(stderr, "timeout after %d frames\n", got); return 1; }
        uint64_t v;
        if (read(fds[0], &v, 8) != 8) continue;
        if (b->frame_count == last) continue;
        last = b->frame_count;
        const uint8_t *f = macemu_get_ready_frame(b);
        uint8_t v0 = f[0];
        for (uint32_t y = 0; y < b->height; y++)
            for (uint32_t x = 0; x < b->width * 4; x++)
                if (f[(size_t)y * macemu_get_bgra_stride() + x] != v0) { bad++; y = b->height; break; }
        if (v0 != (uint8_t)last) bad++;
        got++;
        ack.mac_keycode = v0;
        if (send(s, &ack, sizeof ack, MSG_NOSIGNAL) != sizeof ack) { perror("send"); return 1; }
    }
    printf("frames %d bad %d\n", got, bad);
    return bad != 0;
}

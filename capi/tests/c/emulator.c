/* A C emulator on the handle API: publishes frames and audio, answers input, stops on command.
 * Protocol with the Rust test on stdout: "READY <pid>", then one line per input message. */
#include "macemu_ipc.h"
#include <stdlib.h>

#define W 320
#define H 200

int main(void) {
    uint32_t pid = (uint32_t)getpid();
    MacEmuPublisher *p = macemu_publisher_create(pid, W, H);
    if (!p) { fprintf(stderr, "create: %s\n", macemu_last_error()); return 1; }
    if (macemu_publisher_set_state(p, MACEMU_STATE_RUNNING) != 0) return 1;
    printf("READY %u\n", pid);
    fflush(stdout);

    /* Wait for the server (accepting happens while polling input). */
    MacEmuInput in;
    int frame = 0, running = 1;
    while (running) {
        int r = macemu_publisher_wait_input(p, &in, 5);
        if (r < 0) { fprintf(stderr, "input: %s\n", macemu_last_error()); return 1; }
        if (r == 1) {
            switch (in.hdr.type) {
            case MACEMU_INPUT_KEY:
                printf("KEY %u %u %u\n", in.key.mac_keycode, in.hdr.flags & MACEMU_KEY_DOWN, in.key.modifiers);
                break;
            case MACEMU_INPUT_MOUSE:
                printf("MOUSE %d %d %u %u %llu\n", in.mouse.x, in.mouse.y, in.mouse.buttons,
                       (in.hdr.flags & MACEMU_MOUSE_ABSOLUTE) ? 1u : 0u, (unsigned long long)in.mouse.timestamp_ms);
                break;
            case MACEMU_INPUT_PING:
                printf("PING %u %llu %d\n", in.ping.sequence, (unsigned long long)in.ping.t1_browser_send_ms,
                       in.ping.t3_emulator_recv_us > 0);
                break;
            case MACEMU_INPUT_COMMAND:
                printf("COMMAND %u\n", in.cmd.command);
                if (in.cmd.command == MACEMU_CMD_STOP) running = 0;
                /* Each START asks for the next frame and audio frame. */
                if (in.cmd.command == MACEMU_CMD_START) {
                    uint32_t stride = 0;
                    uint8_t *f = macemu_publisher_frame(p, W, H, MACEMU_PIXFMT_BGRA, &stride);
                    if (!f || stride != 7680) { fprintf(stderr, "frame: %s\n", macemu_last_error()); return 1; }
                    for (int y = 0; y < H; y++)
                        for (int x = 0; x < W; x++) {
                            uint8_t *px = f + (size_t)y * stride + (size_t)x * 4;
                            px[0] = (uint8_t)frame; px[1] = (uint8_t)x; px[2] = (uint8_t)y; px[3] = 0xFF;
                        }
                    /* Audio first: the reader wakes on the frame and then reads audio. */
                    int16_t pcm[441 * 2];
                    for (int i = 0; i < 441 * 2; i++) pcm[i] = (int16_t)(i * 10 - frame);
                    if (macemu_publisher_push_audio(p, 22050, 2, pcm, 441 * 2) != 1) { fprintf(stderr, "audio\n"); return 1; }
                    MacEmuFrameInfo info = { 8, 16, 32, 64, (uint16_t)(100 + frame), 50, 1, {0, 0, 0} };
                    if (macemu_publisher_publish(p, &info) != 0) { fprintf(stderr, "publish: %s\n", macemu_last_error()); return 1; }
                    frame++;
                }
                break;
            case MACEMU_INPUT_MOUSE_MODE:
                printf("MODE %u\n", in.mouse_mode.mode);
                break;
            case MACEMU_INPUT_AUDIO_REQUEST:
                printf("AUDIOREQ %u\n", in.audio_req.requested_samples);
                break;
            }
            fflush(stdout);
        }
    }
    /* Invalid arguments are errors with a message, not crashes. */
    if (macemu_publisher_push_audio(p, 8000, 1, NULL, 0) != -1 || macemu_last_error()[0] == 0) return 2;
    if (macemu_publisher_frame(p, 4000, 10, 0, NULL) != NULL) return 3;
    macemu_publisher_destroy(p);
    printf("BYE\n");
    return 0;
}

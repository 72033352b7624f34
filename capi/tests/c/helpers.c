/* Exercises the v4 helper functions with the semantics of ipc_protocol.h, on a heap buffer. */
#include "macemu_ipc.h"
#include <stdlib.h>
#include <assert.h>
#include <poll.h>

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "helpers.c:%d: CHECK(%s) failed\n", __LINE__, #c); return 1; } } while (0)

int main(void) {
    MacEmuIPCBuffer *b = calloc(1, sizeof(MacEmuIPCBuffer));
    CHECK(b != NULL);
    CHECK(MACEMU_VIDEO_SHM_SIZE == 24898880);
    CHECK(macemu_get_bgra_stride() == 7680);
    CHECK(macemu_actual_bgra_size(512, 342) == 512u * 342u * 4u);

    macemu_init_ipc_buffer(b, 1234, 640, 480);
    CHECK(b->magic == MACEMU_VIDEO_MAGIC && b->version == MACEMU_IPC_VERSION && b->pid == 1234);
    CHECK(b->state == MACEMU_STATE_STOPPED && b->width == 640 && b->height == 480);
    CHECK(b->pixel_format == MACEMU_PIXFMT_BGRA);
    CHECK(b->write_index == 0 && b->ready_index == 0 && b->frame_count == 0);
    CHECK(b->dirty_x == 0 && b->dirty_y == 0 && b->dirty_width == 640 && b->dirty_height == 480);
    CHECK(b->frame_ready_eventfd >= 0 && b->audio_ready_eventfd >= 0);
    CHECK(ATOMIC_LOAD(b->ping_sequence) == 0 && ATOMIC_LOAD(b->audio_frame_write_idx) == 0);
    CHECK(b->audio_silence_frame.sample_rate == 48000 && b->audio_silence_frame.channels == 2);
    CHECK(b->audio_silence_frame.samples == 960 && b->audio_silence_frame.format == MACEMU_AUDIO_FORMAT_PCM_S16);

    CHECK(macemu_validate_ipc_buffer(b, 1234) == 0);
    CHECK(macemu_validate_ipc_buffer(b, 999) == -3);
    b->width = 1921; CHECK(macemu_validate_ipc_buffer(b, 1234) == -4); b->width = 640;
    b->height = 1081; CHECK(macemu_validate_ipc_buffer(b, 1234) == -4); b->height = 480;
    b->version = 3; CHECK(macemu_validate_ipc_buffer(b, 1234) == -2); b->version = 4;
    b->magic = 0; CHECK(macemu_validate_ipc_buffer(b, 1234) == -1); b->magic = MACEMU_VIDEO_MAGIC;

    CHECK(macemu_get_frame_ptr(b, 0) == b->frames[0]);
    CHECK(macemu_get_frame_ptr(b, 2) == b->frames[2]);
    CHECK(macemu_get_frame_ptr(b, 3) == NULL);
    CHECK(macemu_get_write_frame(b) == b->frames[0]);

    /* v4 rotation without readers: ready <- write, write <- write + 1, count++, eventfd +1. */
    for (uint32_t i = 0; i < 7; i++) {
        uint32_t w = b->write_index;
        uint8_t *wf = macemu_get_write_frame(b);
        CHECK(wf == b->frames[w]);
        memset(wf, (int)i, 16);
        macemu_frame_complete(b, 1000 + i);
        CHECK(b->ready_index == w);
        CHECK(b->write_index == (w + 1) % MACEMU_NUM_BUFFERS);
        CHECK(b->frame_count == i + 1 && b->timestamp_us == 1000 + i);
        CHECK(macemu_get_ready_frame(b)[0] == (uint8_t)i && macemu_get_ready_bgra(b) == b->frames[w]);
        uint64_t v = 0;
        CHECK(read(b->frame_ready_eventfd, &v, 8) == 8 && v == 1);
    }
    /* A claimed buffer (reader claim in _reserved = index + 1) is never chosen for writing. */
    for (uint32_t claim = 0; claim < 3; claim++) {
        for (int i = 0; i < 5; i++) {
            b->_reserved = claim + 1;
            macemu_frame_complete(b, 0);
            CHECK(b->write_index != claim && b->write_index != b->ready_index);
        }
    }
    b->_reserved = 0;
    b->write_index = 77; /* corrupt: treated as 0, never used as a wild index */
    macemu_frame_complete(b, 0);
    CHECK(b->ready_index == 0 && b->write_index == 1);
    printf("helpers ok\n");
    close(b->frame_ready_eventfd);
    close(b->audio_ready_eventfd);
    free(b);
    return 0;
}

/* Sound: the video hardware plays one 16-bit word of the sound buffer per scan line,
 * 370 a frame (22254.5 Hz); the high byte of each word is the 8-bit sample (0x80 =
 * silence). PB7 low enables the speaker; PA0-2 set the volume. */
#include "demo.h"

/* 128 + round(100 * sin(2 * pi * i / 37)): 37 samples are one period, so the 370-word
 * buffer holds exactly 10 and loops seamlessly at 22254.5 / 37 = 601.5 Hz. */
static const u8 sine37[37] = {
    128, 145, 161, 177, 191, 203, 213, 221, 226, 228, 227, 224, 217, 208, 197, 184, 169, 153, 136,
    120, 103, 87,  72,  59,  48,  39,  32,  29,  28,  30,  35,  43,  53,  65,  79,  95,  111,
};

#define TONE_TICKS 30 /* half a second */
static volatile u8 tone_left;
volatile u8 tone_playing;

static void fill(const u8 *wave)
{
    volatile u16 *buf = (volatile u16 *)SoundBase;
    u8 i = 0;
    for (u16 n = 0; n < SOUND_WORDS; n++) {
        buf[n] = (u16)((u16)(wave ? wave[i] : 0x80) << 8);
        if (++i == 37) i = 0;
    }
}

void sound_init(void)
{
    SoundBase = MemTop - SOUND_OFFSET;
    SdVolume = 5;
    fill(0);
    vBufA = (u8)((vBufA & ~vSound) | SdVolume);
    vBufB = (u8)(vBufB | vSndEnb);
    tone_left = 0;
    tone_playing = 0;
}

void sound_start_tone(void)
{
    u16 sr = irq_mask(1);
    fill(sine37);
    tone_left = TONE_TICKS;
    tone_playing = 1;
    vBufB = (u8)(vBufB & ~vSndEnb);
    irq_restore(sr);
}

/* VBL: stop the tone after its half second. */
void sound_vbl(void)
{
    if (!tone_left || --tone_left) return;
    vBufB = (u8)(vBufB | vSndEnb);
    fill(0);
    tone_playing = 0;
}

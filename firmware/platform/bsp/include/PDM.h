/* Stand-in for the mbed core's PDM library (the Nano 33 BLE Sense's microphone) on the virtual board: the same
 * class and calls. Blocks of samples come from the sensor feed on the board's 1 ms tick, one buffer's worth of
 * time apart (virtual time), and onReceive() runs in an interrupt as on the nRF52840. Mono, 16000 or 41667 Hz, as
 * the nRF52840 version of the library accepts. Two differences, both stated in firmware/platform/README.md: the
 * gain does not scale the feed's samples, and the next block waits until the last one was read (a real PDM stops
 * on an overrun), so a recording is replayed whole. */
#ifndef TD_PDM_H
#define TD_PDM_H

#include <Arduino.h>

class PDMClass {
public:
    PDMClass(int dinPin, int clkPin, int pwrPin);
    virtual ~PDMClass();

    int begin(int channels, int sampleRate);
    void end();

    virtual int available();
    virtual int read(void *buffer, size_t size);

    void onReceive(void (*function)(void));

    void setGain(int gain);
    void setBufferSize(int bufferSize);

    /* board-support layer: the 1 ms tick asks the feed for the next block when it is due */
    void tick(uint32_t millis);

private:
    int channels_ = -1;
    int sample_rate_ = -1;
    int gain_ = -1;
    volatile bool running_ = false;
    volatile bool ended_ = false;
    uint32_t buffer_bytes_ = 512;
    uint32_t next_due_ms_ = 0;
    volatile uint32_t ready_bytes_ = 0;
    volatile uint32_t read_position_ = 0;
    uint8_t filling_ = 0;
    void (*on_receive_)(void) = nullptr;
};

extern PDMClass PDM;

#endif /* TD_PDM_H */

// PDM stand-in of the virtual board (PDM.h): blocks of samples from the sensor feed on the 1 ms tick.
#include <PDM.h>

#include "td_sensor_link.h"
#include "td_virtual.h"

namespace {

constexpr uint32_t kPdmMaxBuffer = 4096;
uint8_t pdm_buffers[2][kPdmMaxBuffer];

void pdm_tick(uint32_t millis) { PDM.tick(millis); }

uint32_t irq_save()
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

void irq_restore(uint32_t primask) { __asm volatile("msr primask, %0" ::"r"(primask) : "memory"); }

}  // namespace

PDMClass::PDMClass(int dinPin, int clkPin, int pwrPin) { (void)dinPin, (void)clkPin, (void)pwrPin; }

PDMClass::~PDMClass() {}

int PDMClass::begin(int channels, int sampleRate)
{
    // The nRF52840 library takes 16000 or 41667 Hz; the virtual microphone is mono.
    if (channels != 1 || (sampleRate != 16000 && sampleRate != 41667)) {
        return 0;
    }
    channels_ = channels;
    sample_rate_ = sampleRate;
    if (gain_ == -1) {
        gain_ = 20;
    }
    uint32_t primask = irq_save();
    ready_bytes_ = read_position_ = 0;
    ended_ = false;
    filling_ = 0;
    next_due_ms_ = millis() + buffer_bytes_ / 2u * 1000u / (uint32_t)sampleRate;
    running_ = true;
    irq_restore(primask);
    td_clock_set_tick(pdm_tick);
    return 1;
}

void PDMClass::end()
{
    uint32_t primask = irq_save();
    running_ = false;
    ready_bytes_ = read_position_ = 0;
    irq_restore(primask);
    td_clock_set_tick(nullptr);
}

int PDMClass::available()
{
    uint32_t primask = irq_save();
    int count = (int)(ready_bytes_ - read_position_);
    irq_restore(primask);
    return count;
}

int PDMClass::read(void *buffer, size_t size)
{
    uint32_t primask = irq_save();
    uint32_t count = ready_bytes_ - read_position_;
    if (count > size) {
        count = (uint32_t)size;
    }
    memcpy(buffer, &pdm_buffers[filling_ ^ 1u][read_position_], count);
    read_position_ += count;
    irq_restore(primask);
    return (int)count;
}

void PDMClass::onReceive(void (*function)(void)) { on_receive_ = function; }

void PDMClass::setGain(int gain) { gain_ = gain; }

void PDMClass::setBufferSize(int bufferSize)
{
    if (bufferSize >= 2 && (uint32_t)bufferSize <= kPdmMaxBuffer) {
        buffer_bytes_ = (uint32_t)bufferSize & ~1u;
    }
}

void PDMClass::tick(uint32_t millis)
{
    // One block a buffer's duration apart (as the PDM's DMA fills one), in the tick interrupt as the nRF52840's
    // PDM interrupt; the next waits until the last was read (no overruns here, see PDM.h).
    if (!running_ || ended_ || read_position_ < ready_bytes_ || (int32_t)(millis - next_due_ms_) < 0) {
        return;
    }
    uint32_t block_ms = buffer_bytes_ / 2u * 1000u / (uint32_t)sample_rate_;
    next_due_ms_ = (int32_t)(millis - next_due_ms_) > (int32_t)block_ms ? millis + block_ms : next_due_ms_ + block_ms;
    uint32_t received = 0;
    int status = td_sensor_request(TD_SENSOR_AUDIO, (uint16_t)(buffer_bytes_ / 2u), (uint16_t)sample_rate_,
                                   pdm_buffers[filling_], buffer_bytes_, &received);
    if (status != TD_LINK_OK || received == 0) {
        ended_ = true;  // the recording is over, the stream was cut, or no feed: no more callbacks
        return;
    }
    filling_ ^= 1u;  // the filled buffer becomes the one to read
    ready_bytes_ = received & ~1u;
    read_position_ = 0;
    if (on_receive_ != nullptr) {
        on_receive_();
    }
}

PDMClass PDM(0, 0, -1);

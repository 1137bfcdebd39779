// Arduino_OV767X stand-in of the virtual board (Arduino_OV767X.h): frames from the sensor feed.
#include <Arduino_OV767X.h>
#include <Wire.h>

#include "td_sensor_link.h"

OV767X Camera;

int OV767X::begin(int resolution, int format, int fps)
{
    static const int sizes[][2] = {{640, 480}, {352, 240}, {320, 240}, {176, 144}, {160, 120}};
    if (resolution < VGA || resolution > QQVGA ||
        (format != YUV422 && format != RGB444 && format != RGB565 && format != GRAYSCALE) ||
        (fps != 1 && fps != 5)) {  // the library's only frame rates on the Nano 33 BLE
        return 0;
    }
    Wire.begin();
    Wire.beginTransmission(0x21);
    Wire.write(0x0A);  // PID, as the library checks
    if (Wire.endTransmission() != 0 || Wire.requestFrom((uint8_t)0x21, (size_t)1) != 1 || Wire.read() != 0x76) {
        return 0;
    }
    resolution_ = resolution;
    format_ = format;
    width_ = sizes[resolution][0];
    height_ = sizes[resolution][1];
    bytes_per_pixel_ = 2;  // also for GRAYSCALE, as the library reports it (it reads YUV422 and keeps one byte a pixel)
    grayscale_ = format == GRAYSCALE;
    begun_ = true;
    return 1;
}

void OV767X::readFrame(void *buffer)
{
    if (!begun_ || buffer == nullptr) {
        return;
    }
    uint32_t bytes = (uint32_t)width_ * (uint32_t)height_ * (grayscale_ ? 1u : (uint32_t)bytes_per_pixel_);
    uint16_t arg = (uint16_t)((resolution_ << 8) | format_ | (test_pattern_ ? 0x8000 : 0));
    (void)td_sensor_request(TD_SENSOR_FRAME, 0, arg, buffer, bytes, nullptr);
}

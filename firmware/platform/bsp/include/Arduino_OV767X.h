/* Stand-in for the Arduino_OV767X library (the OV7675 camera on the TinyML shield) on the virtual board: the same
 * class, constants and calls. begin() reads the camera's product ID over Wire (the shield's SCCB port) as the
 * library does; readFrame() fills the sketch's buffer with a frame from the sensor feed, already in the format
 * asked for (RGB565 and YUV422: two bytes a pixel, high byte first; GRAYSCALE: one, though bytesPerPixel() says 2
 * as in the library). Frame rates 1 and 5, the library's on the Nano 33 BLE. */
#ifndef TD_ARDUINO_OV767X_H
#define TD_ARDUINO_OV767X_H

#include <Arduino.h>

enum {
    YUV422 = 0,
    RGB444 = 1,
    RGB565 = 2,
    GRAYSCALE = 4
};

enum {
    VGA = 0,   // 640x480
    CIF = 1,   // 352x240
    QVGA = 2,  // 320x240
    QCIF = 3,  // 176x144
    QQVGA = 4, // 160x120
};

class OV767X {
public:
    OV767X() {}
    virtual ~OV767X() {}

    int begin(int resolution, int format, int fps);  // fps: 1 or 5
    void end() { begun_ = false; }

    int width() const { return width_; }
    int height() const { return height_; }
    int bitsPerPixel() const { return bytes_per_pixel_ * 8; }
    int bytesPerPixel() const { return bytes_per_pixel_; }

    void readFrame(void *buffer);

    void testPattern(int pattern = 2) { test_pattern_ = pattern != 0; }
    void noTestPattern() { test_pattern_ = false; }

    void setSaturation(int saturation) { (void)saturation; }
    void setHue(int hue) { (void)hue; }
    void setBrightness(int brightness) { (void)brightness; }
    void setContrast(int contrast) { (void)contrast; }
    void horizontalFlip() {}
    void noHorizontalFlip() {}
    void verticalFlip() {}
    void noVerticalFlip() {}
    void setGain(int gain) { (void)gain; }
    void autoGain() {}
    void setExposure(int exposure) { (void)exposure; }
    void autoExposure() {}
    void setPins(int vsync, int href, int pclk, int xclk, const int dpins[8])
    {
        (void)vsync, (void)href, (void)pclk, (void)xclk, (void)dpins;
    }

private:
    bool begun_ = false;
    bool grayscale_ = false;
    bool test_pattern_ = false;
    int resolution_ = 0;
    int format_ = 0;
    int width_ = 0;
    int height_ = 0;
    int bytes_per_pixel_ = 0;
};

extern OV767X Camera;

#endif /* TD_ARDUINO_OV767X_H */

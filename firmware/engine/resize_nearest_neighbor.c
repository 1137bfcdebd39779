/* Reference RESIZE_NEAREST_NEIGHBOR: one pixel copy per output pixel. */
#include "resize_nearest_neighbor.h"

#include <stddef.h>
#include <string.h>

void td_resize_nearest_neighbor(const td_resize_nearest_neighbor_params *params, const uint8_t *input,
                                uint8_t *output)
{
    const size_t pixel = (size_t)params->pixel_bytes;
    const size_t row_bytes = (size_t)params->input_width * pixel;
    uint8_t *out = output;
    for (int32_t b = 0; b < params->batches; ++b) {
        const uint8_t *image = input + (size_t)b * (size_t)params->input_height * row_bytes;
        for (int32_t y = 0; y < params->output_height; ++y) {
            const uint8_t *row = image + (size_t)params->rows[y] * row_bytes;
            for (int32_t x = 0; x < params->output_width; ++x) {
                memcpy(out, row + (size_t)params->columns[x] * pixel, pixel);
                out += pixel;
            }
        }
    }
}

/* Reference integer UNIDIRECTIONAL_SEQUENCE_LSTM, bit-exact with TFLM's: per gate two fully connected layers
 * (input and recurrent) into Q3.12 saturated to int16, their saturating sum, the table-based sigmoid or tanh into
 * Q0.15; then cell = forget * cell + input * cell_gate (saturating, optionally clipped) and
 * hidden = tanh(cell) * output_gate, requantized to the hidden state's scale. */
#include "lstm.h"

#include <stddef.h>
#include <string.h>

#include "td_int16.h"
#include "td_quant.h"

/* Gate pre-activations in Q3.12 times 3: the scaling TFLM applies before its sigmoid/tanh table for Q3.12. */
#define TD_LSTM_GATE_TABLE_MULTIPLIER 3

static int16_t gate_from_products(int16_t from_input, int16_t from_hidden)
{
    return td_saturate_i16((int32_t)from_input + (int32_t)from_hidden);
}

static int16_t gate_s8(const td_lstm_params *params, const td_lstm_gate *gate, int32_t cell, const int8_t *input,
                       const int8_t *hidden)
{
    const int8_t *weights = gate->input_weights + (size_t)cell * (size_t)params->input_size;
    int32_t acc = 0;
    for (int32_t i = 0; i < params->input_size; ++i) {
        acc += ((int32_t)weights[i] + params->weights_offset) * ((int32_t)input[i] + params->input_offset);
    }
    if (gate->bias != NULL) {
        acc += gate->bias[cell];
    }
    const int16_t from_input =
        td_saturate_i16(td_multiply_by_quantized_multiplier(acc, gate->input_multiplier, gate->input_shift));
    weights = gate->recurrent_weights + (size_t)cell * (size_t)params->state_size;
    acc = 0;
    for (int32_t i = 0; i < params->state_size; ++i) {
        acc += ((int32_t)weights[i] + params->weights_offset) * ((int32_t)hidden[i] + params->hidden_offset);
    }
    const int16_t from_hidden = td_saturate_i16(
        td_multiply_by_quantized_multiplier(acc, gate->recurrent_multiplier, gate->recurrent_shift));
    return gate_from_products(from_input, from_hidden);
}

static int16_t gate_s16(const td_lstm_params *params, const td_lstm_gate *gate, int32_t cell, const int16_t *input,
                        const int16_t *hidden)
{
    const int8_t *weights = gate->input_weights + (size_t)cell * (size_t)params->input_size;
    int64_t acc = 0;
    for (int32_t i = 0; i < params->input_size; ++i) {
        acc += ((int32_t)weights[i] + params->weights_offset) * ((int32_t)input[i] + params->input_offset);
    }
    if (gate->bias64 != NULL) {
        acc += gate->bias64[cell];
    }
    const int16_t from_input =
        td_saturate_i16(td_multiply_by_quantized_multiplier_i64(acc, gate->input_multiplier, gate->input_shift));
    weights = gate->recurrent_weights + (size_t)cell * (size_t)params->state_size;
    acc = 0;
    for (int32_t i = 0; i < params->state_size; ++i) {
        acc += ((int32_t)weights[i] + params->weights_offset) * ((int32_t)hidden[i] + params->hidden_offset);
    }
    const int16_t from_hidden = td_saturate_i16(
        td_multiply_by_quantized_multiplier_i64(acc, gate->recurrent_multiplier, gate->recurrent_shift));
    return gate_from_products(from_input, from_hidden);
}

static int16_t gate_sigmoid(int16_t pre_activation)
{
    return td_lut_sigmoid((int32_t)pre_activation * TD_LSTM_GATE_TABLE_MULTIPLIER);
}

/* Update one cell from its gates' pre-activations; returns its new hidden value in the hidden state's type. */
static int32_t update_cell(const td_lstm_params *params, const int16_t pre[TD_LSTM_GATES], int16_t *cell)
{
    const int32_t forget = gate_sigmoid(pre[TD_LSTM_FORGET]);
    const int32_t input = gate_sigmoid(pre[TD_LSTM_INPUT]);
    const int32_t candidate = td_lut_tanh((int32_t)pre[TD_LSTM_CELL] * TD_LSTM_GATE_TABLE_MULTIPLIER);
    const int32_t output = gate_sigmoid(pre[TD_LSTM_OUTPUT]);
    const int16_t kept =
        td_saturate_i16(td_multiply_by_quantized_multiplier(forget * *cell, params->forget_multiplier,
                                                            params->forget_shift));
    const int16_t added =
        td_saturate_i16(td_multiply_by_quantized_multiplier(input * candidate, params->input_multiplier,
                                                            params->input_shift));
    int32_t state = td_saturate_i16((int32_t)kept + (int32_t)added);
    if (params->clip_cell) {
        state = td_clamp_i32(state, -params->cell_clip, params->cell_clip);
    }
    *cell = (int16_t)state;
    const int32_t squashed =
        td_lut_tanh(td_lut_input((int16_t)state, params->cell_tanh_multiplier, params->cell_tanh_shift));
    const int32_t hidden =
        td_multiply_by_quantized_multiplier(squashed * output, params->output_multiplier, params->output_shift) +
        params->hidden_zero_point;
    return td_clamp_i32(hidden, params->hidden_min, params->hidden_max);
}

/* Row of input/output read and written at (batch, time). */
static size_t sequence_row(const td_lstm_params *params, int32_t batch, int32_t time)
{
    return params->time_major ? (size_t)time * (size_t)params->batches + (size_t)batch
                              : (size_t)batch * (size_t)params->time_steps + (size_t)time;
}

void td_lstm_s8(const td_lstm_params *params, const int8_t *input, int8_t *output, int8_t *hidden_state,
                int16_t *cell_state)
{
    const size_t state_size = (size_t)params->state_size;
    for (int32_t batch = 0; batch < params->batches; ++batch) {
        int8_t *hidden = hidden_state + (size_t)batch * state_size;
        int16_t *cells = cell_state + (size_t)batch * state_size;
        for (int32_t time = 0; time < params->time_steps; ++time) {
            const size_t row = sequence_row(params, batch, time);
            const int8_t *x = input + row * (size_t)params->input_size;
            int8_t *out = output + row * state_size;
            for (int32_t cell = 0; cell < params->state_size; ++cell) {
                int16_t pre[TD_LSTM_GATES];
                for (int32_t g = 0; g < TD_LSTM_GATES; ++g) {
                    pre[g] = gate_s8(params, &params->gates[g], cell, x, hidden);
                }
                out[cell] = (int8_t)update_cell(params, pre, &cells[cell]);
            }
            memcpy(hidden, out, state_size * sizeof(*hidden));
        }
    }
}

void td_lstm_s16(const td_lstm_params *params, const int16_t *input, int16_t *output, int16_t *hidden_state,
                 int16_t *cell_state)
{
    const size_t state_size = (size_t)params->state_size;
    for (int32_t batch = 0; batch < params->batches; ++batch) {
        int16_t *hidden = hidden_state + (size_t)batch * state_size;
        int16_t *cells = cell_state + (size_t)batch * state_size;
        for (int32_t time = 0; time < params->time_steps; ++time) {
            const size_t row = sequence_row(params, batch, time);
            const int16_t *x = input + row * (size_t)params->input_size;
            int16_t *out = output + row * state_size;
            for (int32_t cell = 0; cell < params->state_size; ++cell) {
                int16_t pre[TD_LSTM_GATES];
                for (int32_t g = 0; g < TD_LSTM_GATES; ++g) {
                    pre[g] = gate_s16(params, &params->gates[g], cell, x, hidden);
                }
                out[cell] = (int16_t)update_cell(params, pre, &cells[cell]);
            }
            memcpy(hidden, out, state_size * sizeof(*hidden));
        }
    }
}

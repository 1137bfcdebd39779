/* UNIDIRECTIONAL_SEQUENCE_LSTM, integer: int8 activations (int32 biases) or int16 activations (int64 biases),
 * int8 weights, int16 cell state, TFLM's fixed gate scales (pre-activations Q3.12, gate outputs Q0.15).
 * Hidden and cell state are variable tensors: they live in the plan and carry over from one invoke to the next.
 * The kernel needs no scratch memory: each cell is updated from its four gates at once, and the new hidden state
 * is written to the output row first and copied into the state once the whole row is done (every gate reads the
 * old hidden state, as in TFLM). Rows are processed in memory order, so the output may begin before the input
 * and overwrite input rows already consumed (the generator bounds how far). */
#ifndef TD_LSTM_H
#define TD_LSTM_H

#include <stdint.h>

enum { TD_LSTM_FORGET = 0, TD_LSTM_INPUT = 1, TD_LSTM_CELL = 2, TD_LSTM_OUTPUT = 3, TD_LSTM_GATES = 4 };

typedef struct {
    const int8_t *input_weights;     /* [state][input] */
    const int8_t *recurrent_weights; /* [state][state] */
    const int32_t *bias;             /* [state]: the int8 model's bias, else NULL */
    const int64_t *bias64;           /* [state]: the int16 model's bias, else NULL */
    int32_t input_multiplier, input_shift;         /* input x weights -> Q3.12 */
    int32_t recurrent_multiplier, recurrent_shift; /* hidden state x weights -> Q3.12 */
} td_lstm_gate;

typedef struct {
    int32_t batches, time_steps, input_size, state_size;
    int32_t time_major; /* 1: input [time][batch][input], 0: [batch][time][input] */
    int32_t input_offset, hidden_offset, weights_offset; /* minus the zero points */
    td_lstm_gate gates[TD_LSTM_GATES];
    int32_t forget_multiplier, forget_shift; /* forget gate x cell state -> cell state */
    int32_t input_multiplier, input_shift;   /* input gate x cell gate -> cell state */
    int32_t clip_cell, cell_clip;            /* clip the cell state to +-cell_clip (quantized) when clip_cell */
    int32_t cell_tanh_multiplier, cell_tanh_shift; /* the cell state scaled for the tanh table */
    int32_t output_multiplier, output_shift; /* tanh(cell) x output gate -> hidden state */
    int32_t hidden_zero_point, hidden_min, hidden_max;
} td_lstm_params;

void td_lstm_s8(const td_lstm_params *params, const int8_t *input, int8_t *output, int8_t *hidden_state,
                int16_t *cell_state);
void td_lstm_s16(const td_lstm_params *params, const int16_t *input, int16_t *output, int16_t *hidden_state,
                 int16_t *cell_state);

#endif /* TD_LSTM_H */

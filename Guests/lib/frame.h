/* Offsets of struct frame (rt.h) for exc.S. */
#define FRAME_HI 128
#define FRAME_LO 132
#define FRAME_EPC 136
#define FRAME_STATUS 140
#define FRAME_CAUSE 144
#define FRAME_BADVADDR 148
#define FRAME_VECTOR 152
#define FRAME_SIZE 160
#define HANDLER_STACK 2048 /* room for the C handler below each frame */

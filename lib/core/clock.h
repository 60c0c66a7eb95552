/* Seconds on the monotonic clock, for durations (never for dates). */
#ifndef XFER_CLOCK_H
#define XFER_CLOCK_H

double xfer_clock(void);

#endif

/* Compile-time options and their defaults, in one place (override with -D). */
#ifndef XFER_CONFIG_H
#define XFER_CONFIG_H

#define XFER_VERSION "0.1.0"

/* Database used when neither --db nor $XFER_DB is given. */
#ifndef XFER_DEFAULT_DB
#define XFER_DEFAULT_DB "xfer.db"
#endif

/* SQLite busy timeout (ms): several workers share one database file. */
#ifndef XFER_BUSY_TIMEOUT_MS
#define XFER_BUSY_TIMEOUT_MS 30000
#endif

/* Seconds a claim lasts unless renewed (--lease): a run's in the queue, a
 * search's row while xfer-search runs it. */
#ifndef XFER_DEFAULT_LEASE
#define XFER_DEFAULT_LEASE 120
#endif

/* Share of the training split moved to validation when the source has none. */
#ifndef XFER_DEFAULT_VALID_FRACTION
#define XFER_DEFAULT_VALID_FRACTION 0.1
#endif

/* Largest image side and class count a dataset may have. */
#ifndef XFER_MAX_SIDE
#define XFER_MAX_SIDE 4096
#endif
#ifndef XFER_MAX_CLASSES
#define XFER_MAX_CLASSES 65535
#endif

/* Largest single array or archive member read into memory (bytes). */
#ifndef XFER_MAX_MEMBER
#define XFER_MAX_MEMBER ((size_t)8 << 30)
#endif

#endif

/* clockshift: an LD_PRELOAD shim that steps a process's wall clock, like an NTP step.
 *
 * Only CLOCK_REALTIME and CLOCK_REALTIME_COARSE (and gettimeofday, time) get an offset;
 * CLOCK_MONOTONIC, CLOCK_BOOTTIME and every other clock pass through unchanged, as on a
 * real machine whose wall clock is stepped. The offset, in seconds (a decimal number, may
 * be negative), is read from the file named by $CLOCKSHIFT_FILE, at most every 10 ms of
 * monotonic time. No malloc in the hot path: open/read/close into a stack buffer.
 *
 * Build: gcc -shared -fPIC -O2 -o clockshift.so clockshift.c -ldl
 * (used by bench/chaos/clock.py; libfaketime shifts the monotonic clock too).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;
static _Atomic long long offset_ns;
static _Atomic long long checked_at_ns = -1;

static clock_gettime_fn real(void) {
    if (real_clock_gettime == NULL)
        real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    return real_clock_gettime;
}

/* "-3600.5\n" -> nanoseconds; 0 on anything unreadable. */
static long long parse_ns(const char *s) {
    long long sign = 1, whole = 0, frac = 0, scale = 1000000000LL;
    while (*s == ' ' || *s == '\t') s++;
    if (*s == '-') { sign = -1; s++; } else if (*s == '+') s++;
    while (*s >= '0' && *s <= '9') whole = whole * 10 + (*s++ - '0');
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9' && scale > 1) { scale /= 10; frac += (*s++ - '0') * scale; }
    }
    return sign * (whole * 1000000000LL + frac);
}

static long long current_offset(void) {
    struct timespec mono;
    if (real()(CLOCK_MONOTONIC, &mono) != 0) return atomic_load(&offset_ns);
    long long now = (long long)mono.tv_sec * 1000000000LL + mono.tv_nsec;
    long long last = atomic_load(&checked_at_ns);
    if (last >= 0 && now - last < 10000000LL) return atomic_load(&offset_ns);
    atomic_store(&checked_at_ns, now);
    const char *path = getenv("CLOCKSHIFT_FILE");
    if (path == NULL) return atomic_load(&offset_ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return atomic_load(&offset_ns);
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
        buf[n] = '\0';
        atomic_store(&offset_ns, parse_ns(buf));
    }
    return atomic_load(&offset_ns);
}

static void shift(struct timespec *ts) {
    long long t = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + current_offset();
    ts->tv_sec = (time_t)(t / 1000000000LL);
    ts->tv_nsec = (long)(t % 1000000000LL);
    if (ts->tv_nsec < 0) { ts->tv_nsec += 1000000000L; ts->tv_sec -= 1; }
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    int rc = real()(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        shift(ts);
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    (void)tz;
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    if (rc == 0) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return rc;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
    if (out != NULL) *out = ts.tv_sec;
    return ts.tv_sec;
}

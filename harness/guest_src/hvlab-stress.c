/*
 * hvlab-stress: the guest's controlled dirtying workload (hvlab's own program).
 *
 * It fills a working set of W MiB with non-zero data (every page distinct), then dirties
 * it at a paced rate of R MiB/s, one 8-byte store per page (a small XBZRLE delta), in a
 * cyclic (address order, wrapping) or random (uniform page) pattern. Like the stress
 * program of QEMU's tests/migration/guestperf it reports what it achieved; it also prints
 * a heartbeat line every H ms so the host can read the guest-visible pause of a
 * migration from the arrival times of those lines on the serial console (the guest's own
 * clock stops while the VM is stopped, so the guest cannot see the pause itself). It also
 * keeps a heartbeat in memory, always: word 3 of working-set page 0 counts its 1 ms
 * steps, so a host that reads guest memory (QMP/HMP xp) sees the pause without any
 * guest output.
 *
 * usage: hvlab-stress -w MIB -r MIBPS [-p cyclic|random] [-b HEARTBEAT_MS]
 *                     [-o FILE] [-t SECONDS]
 * Output lines (to FILE, default stdout):
 *   "stress filled <W> MiB"                      once, after the fill (word 0 of each
 *                                                page: 0x68766c6162 << 24 | index)
 *   "stress rate <MiB/s> pages <n>"              once a second: achieved rate
 *   "hb <seq>"                                   every HEARTBEAT_MS, if given
 *   "stress verify ok <pages>" / "stress verify bad page <i>"   on SIGUSR1: every
 *                                                page still holds its fill pattern
 * SIGTERM/SIGINT end it. Built static for x86_64 and aarch64 by harness/guest.py.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define WORDS (PAGE / sizeof(uint64_t))
/* the word each dirtying store changes; the rest of the page keeps its fill pattern */
#define HOT_WORD 1
/* page 0's word that counts the pacing steps (the memory heartbeat) */
#define BEAT_WORD 3

static volatile sig_atomic_t stop_flag, verify_flag;

static void on_stop(int sig) { (void)sig; stop_flag = 1; }
static void on_verify(int sig) { (void)sig; verify_flag = 1; }

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* the fill value of word w of page p: never zero, different for every page and word.
 * Word 0 is a tag plus the page's index in the working set, so a dump of guest memory
 * shows where each working-set page sits (the fidelity bench reads it). */
#define TAG 0x68766c6162000000ULL /* "hvlab" in the top bytes */
static uint64_t fill_word(uint64_t p, uint64_t w)
{
    if (w == 0)
        return TAG | p;
    uint64_t x = (p * 0x9E3779B97F4A7C15ULL) ^ (w * 0xC2B2AE3D27D4EB4FULL) ^ 0x68766c6162ULL;
    x ^= x >> 29;
    return x | 1;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void usage(void)
{
    fprintf(stderr, "usage: hvlab-stress -w MIB -r MIBPS [-p cyclic|random] "
                    "[-b HEARTBEAT_MS] [-o FILE] [-t SECONDS]\n");
    exit(2);
}

static long parse_num(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    long ws_mib = -1, rate_mib = -1, hb_ms = 0, seconds = 0;
    int random_pattern = 0, opt;
    const char *out_path = NULL;

    while ((opt = getopt(argc, argv, "w:r:p:b:o:t:")) != -1) {
        switch (opt) {
        case 'w': ws_mib = parse_num(optarg); break;
        case 'r': rate_mib = parse_num(optarg); break;
        case 'b': hb_ms = parse_num(optarg); break;
        case 't': seconds = parse_num(optarg); break;
        case 'o': out_path = optarg; break;
        case 'p':
            if (!strcmp(optarg, "random"))
                random_pattern = 1;
            else if (strcmp(optarg, "cyclic"))
                usage();
            break;
        default: usage();
        }
    }
    if (ws_mib <= 0 || rate_mib < 0)
        usage();
    FILE *out = stdout;
    if (out_path && !(out = fopen(out_path, "w"))) {
        perror(out_path);
        return 1;
    }
    setvbuf(out, NULL, _IOLBF, 0);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_verify;
    sigaction(SIGUSR1, &sa, NULL);

    uint64_t npages = (uint64_t)ws_mib * (1UL << 20) / PAGE;
    uint64_t *mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (mem == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    mlock(mem, npages * PAGE); /* best effort: keep the working set resident */
    for (uint64_t p = 0; p < npages; p++)
        for (uint64_t w = 0; w < WORDS; w++)
            mem[p * WORDS + w] = fill_word(p, w);
    fprintf(out, "stress filled %ld MiB\n", ws_mib);

    double pages_per_ns = (double)rate_mib * (1UL << 20) / PAGE / 1e9;
    uint64_t start = now_ns(), last_report = start, next_hb = start, hb_seq = 0;
    /* done: pages due so far (paced); written: pages really written (a vCPU that cannot
     * keep up skips what is more than 10 ms behind, so written/s is the achieved rate) */
    uint64_t done = 0, written = 0, written_at_report = 0, cursor = 0;
    uint64_t seed = 0x2545F4914F6CDD1DULL;
    uint64_t counter = 1;
    struct timespec tick = {0, 1000000}; /* pace in 1 ms steps */

    while (!stop_flag) {
        uint64_t t = now_ns();
        if (seconds && t - start >= (uint64_t)seconds * 1000000000ULL)
            break;
        uint64_t due = (uint64_t)((double)(t - start) * pages_per_ns);
        /* never more than 10 ms of backlog: a stopped or throttled vCPU does not catch up */
        uint64_t cap = (uint64_t)(pages_per_ns * 1e7) + 1;
        if (due > done + cap)
            done = due - cap;
        while (done < due) {
            uint64_t p = random_pattern ? xorshift(&seed) % npages : cursor;
            cursor = cursor + 1 == npages ? 0 : cursor + 1;
            mem[p * WORDS + HOT_WORD] = fill_word(p, HOT_WORD) ^ (counter++ << 1);
            done++;
            written++;
        }
        mem[BEAT_WORD]++;
        if (hb_ms && t >= next_hb) {
            fprintf(out, "hb %llu\n", (unsigned long long)hb_seq++);
            next_hb = t + (uint64_t)hb_ms * 1000000ULL;
        }
        if (t - last_report >= 1000000000ULL) {
            double secs = (double)(t - last_report) / 1e9;
            fprintf(out, "stress rate %.1f pages %llu\n",
                    (double)(written - written_at_report) * PAGE / (1 << 20) / secs,
                    (unsigned long long)written);
            last_report = t;
            written_at_report = written;
        }
        if (verify_flag) {
            verify_flag = 0;
            uint64_t bad = npages;
            for (uint64_t p = 0; p < npages && bad == npages; p++)
                for (uint64_t w = 0; w < WORDS; w++)
                    if (w != HOT_WORD && !(p == 0 && w == BEAT_WORD) &&
                        mem[p * WORDS + w] != fill_word(p, w)) {
                        bad = p;
                        break;
                    }
            if (bad == npages)
                fprintf(out, "stress verify ok %llu\n", (unsigned long long)npages);
            else
                fprintf(out, "stress verify bad page %llu\n", (unsigned long long)bad);
        }
        nanosleep(&tick, NULL);
    }
    fprintf(out, "stress done pages %llu\n", (unsigned long long)written);
    return 0;
}

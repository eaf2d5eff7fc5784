#include <sys/prctl.h>

/* prctl is variadic, which Swift cannot call: the one use Warden has, as a plain function. */
static inline int warden_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL);
}

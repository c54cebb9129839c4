// Magritte's shim over libedit (BSD licence; Debian libedit-dev, pkg-config libedit), the line
// editor of the `magritte` console.
//
// libedit's native API configures everything through the variadic el_set() and history(), which
// Swift cannot call: each use is wrapped here as a static inline function with the prefix `mg_`.
#ifndef MAGRITTE_EDITLINE_SHIM_H
#define MAGRITTE_EDITLINE_SHIM_H

#include <histedit.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/// A prompt callback: returns the prompt text (libedit does not free it).
typedef char *(*mg_el_prompt_function)(EditLine *);
/// An editor command (bound to a key): returns one of the CC_* codes.
typedef unsigned char (*mg_el_command)(EditLine *, int);

static inline void mg_el_set_prompt(EditLine *el, mg_el_prompt_function f) { el_set(el, EL_PROMPT, f); }
static inline void mg_el_set_editor(EditLine *el, const char *mode) { el_set(el, EL_EDITOR, mode); }
/// Lets libedit restore the terminal around SIGINT, SIGTSTP, SIGCONT, SIGWINCH... and then pass
/// the signal on to the handler installed before el_gets (it re-raises it with kill).
static inline void mg_el_set_signal(EditLine *el, int on) { el_set(el, EL_SIGNAL, on); }
static inline void mg_el_set_history(EditLine *el, History *h) { el_set(el, EL_HIST, history, h); }
static inline void mg_el_add_command(EditLine *el, const char *name, const char *help, mg_el_command f) {
    el_set(el, EL_ADDFN, name, help, f);
}
static inline void mg_el_bind(EditLine *el, const char *key, const char *command) {
    el_set(el, EL_BIND, key, command, NULL);
}

/// The C streams (Swift 6 rejects the global variables `stdin`... as shared mutable state).
static inline FILE *mg_stdin(void) { return stdin; }
static inline FILE *mg_stdout(void) { return stdout; }
static inline FILE *mg_stderr(void) { return stderr; }

/// A history of at most `size` entries that skips consecutive duplicates.
static inline History *mg_history_new(int size) {
    HistEvent ev;
    History *h = history_init();
    if (h == NULL) return NULL;
    history(h, &ev, H_SETSIZE, size);
    history(h, &ev, H_SETUNIQUE, 1);
    return h;
}
static inline int mg_history_enter(History *h, const char *line) {
    HistEvent ev;
    return history(h, &ev, H_ENTER, line);
}
static inline int mg_history_load(History *h, const char *path) {
    HistEvent ev;
    return history(h, &ev, H_LOAD, path);
}
static inline int mg_history_save(History *h, const char *path) {
    HistEvent ev;
    return history(h, &ev, H_SAVE, path);
}

/// The width of the terminal on `fd`, or 80.
static inline int mg_terminal_columns(int fd) {
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

/// Installs `handler` for `signo` and unblocks it. Without `restart`, a read() waiting at the prompt returns
/// EINTR and el_gets() returns to its caller (glibc's signal() always sets SA_RESTART).
/// (Here rather than in Swift because glibc's struct sigaction hides the handler in a union.)
static inline int mg_set_signal_handler(int signo, void (*handler)(int), int restart) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = restart ? SA_RESTART : 0;
    if (sigaction(signo, &sa, NULL) != 0) return -1;
    // A parent may have started us with the signal blocked (the mask is inherited through exec).
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    return sigprocmask(SIG_UNBLOCK, &set, NULL);
}

#endif

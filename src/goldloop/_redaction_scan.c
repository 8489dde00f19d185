/*
 * goldloop._redaction_scan: the built-in redaction detectors' pre-screens in one C pass.
 *
 * goldloop.domain.redaction decides which built-in detectors run on a string, and where, with
 * cheap necessary conditions of a match (see _screen_py there): an '@' (an email); windows
 * around each run of hex digits and colons with "::" or 7+ colons (IPv6), and around each run
 * of 15+ token characters (a secret; the whole string
 * when it holds "-----", a PEM block's); and windows around the places where the string's shape
 * (every digit and every non-ASCII character '0', every capital 'A') holds the form of a card,
 * a North American number, an IBAN, an IPv4 address, "(000) 000-0000" or a '+' (the number
 * detectors). In Python that is a dozen C passes over the string with a Python call between
 * each; here it is one pass over the characters that builds the shape, the flags and the secret
 * windows, and one over the shape for the number forms.
 *
 * The answer is the Python one or wider, never narrower: each number form is checked at every
 * position (the Python screen takes non-overlapping matches, a subset of these), so the windows
 * cover every window the Python screen gives. tests/test_redaction_screens.py runs the two side by
 * side on the same seeded strings and holds the redactor using this one to the reference.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

enum { SECRET = 1, EMAIL = 2, IP6 = 4, NUMERIC = 8 };

#define SECRET_RUN 15      /* _SECRET_RUN: the shortest secret, "xoxb-" and 10 more */
#define BEFORE_NUMERIC 12  /* _BEFORE_NUMERIC */
#define LONGEST_NUMERIC 64 /* _LONGEST_NUMERIC */
#define STACK_SHAPE 4096

static uint8_t SHAPE[256]; /* _SHAPE for ASCII; any other character is '0' */
enum { TOKEN = 1, DIGIT = 2, SPECIAL = 4, HEX = 8 };
/* TOKEN: _TOKEN's 'w'; DIGIT: '0' in the shape; SPECIAL: - @ :; HEX: [0-9A-Fa-f:] */
static uint8_t CLASS[256];
static uint8_t FORM_START[256]; /* the shape characters a number form starts with: themselves */

struct scan {
    Py_ssize_t n;
    uint8_t *shape;
    int want_secret, want_ip6, found, bits, pem, double_colon;
    Py_ssize_t longest, colons;
    PyObject *secret; /* the secret windows, merged (NULL: none yet) */
    Py_ssize_t secret_lo, secret_hi;
    PyObject *ip6; /* the IPv6 windows (NULL: none) */
};

static int add_window(PyObject **windows, Py_ssize_t lo, Py_ssize_t hi);

/* A run of token characters [start, end) long enough to hold a secret: its window (with a
   "Bearer" and the blanks before it, for the bearer form), merged with the one before. */
static int secret_run(struct scan *s, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t lo = start;
    while (lo > 0 && (s->shape[lo - 1] == ' ' || s->shape[lo - 1] == '\t'))
        lo--;
    lo = lo < start ? (lo > 6 ? lo - 6 : 0) : start;
    Py_ssize_t hi = end < s->n ? end + 1 : end;
    s->found |= SECRET;
    if (s->secret_lo >= 0 && lo <= s->secret_hi) {
        s->secret_hi = hi;
        return 0;
    }
    if (s->secret_lo >= 0 && add_window(&s->secret, s->secret_lo, s->secret_hi) < 0)
        return -1;
    s->secret_lo = lo;
    s->secret_hi = hi;
    return 0;
}

/* A run of hex digits and colons [start, end) with "::" or 7+ colons: a valid IPv6 address
   has one of them, and a match of _IP6 is a whole run (its look-arounds refuse a hex digit or a
   colon on either side). Its window, with the character after it for the look-ahead. */
static int ip6_run(struct scan *s, Py_ssize_t start, Py_ssize_t end)
{
    s->found |= IP6;
    return add_window(&s->ip6, start, end < s->n ? end + 1 : end);
}

static inline __attribute__((always_inline)) uint8_t char_class(Py_UCS4 c)
{
    return c < 256 ? CLASS[c] : DIGIT; /* any other character is a digit in the shape */
}

/* The first pass, for one storage kind (the compiler makes three copies of it): the shape and
   the flags, branch-free but for '-', '@' and ':'. */
static inline __attribute__((always_inline)) void
first_pass(const void *data, int kind, struct scan *s)
{
    Py_ssize_t n = s->n, run = 0, longest = 0, last_dash = -2, dashes = 0, last_colon = -2;
    uint8_t *shape = s->shape;
    int bits = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        uint8_t k = char_class(c);
        shape[i] = c < 256 ? SHAPE[c] : '0';
        bits |= k;
        run = (run + 1) & -(Py_ssize_t)(k & TOKEN);
        longest = run > longest ? run : longest;
        if (k & SPECIAL) {
            if (c == '-') {
                dashes = last_dash == i - 1 ? dashes + 1 : 1;
                last_dash = i;
                if (dashes >= 5)
                    s->pem = 1;
            }
            else if (c == '@') {
                s->found |= EMAIL;
            }
            else { /* ':' */
                s->colons++;
                if (last_colon == i - 1)
                    s->double_colon = 1;
                last_colon = i;
            }
        }
    }
    s->bits = bits;
    s->longest = longest;
}

/* The secret windows: each run of SECRET_RUN or more token characters (secret_run). */
static inline __attribute__((always_inline)) int
secret_pass(const void *data, int kind, struct scan *s)
{
    Py_ssize_t n = s->n, run = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (char_class(PyUnicode_READ(kind, data, i)) & TOKEN) {
            run++;
            continue;
        }
        if (run >= SECRET_RUN && secret_run(s, i - run, i) < 0)
            return -1;
        run = 0;
    }
    return run >= SECRET_RUN ? secret_run(s, n - run, n) : 0;
}

/* The IPv6 windows: each run of hex digits and colons with "::" or 7+ colons (ip6_run). */
static inline __attribute__((always_inline)) int
ip6_pass(const void *data, int kind, struct scan *s)
{
    Py_ssize_t n = s->n, start = -1, colons = 0;
    int double_colon = 0;
    for (Py_ssize_t i = 0; i <= n; i++) {
        Py_UCS4 c = i < n ? PyUnicode_READ(kind, data, i) : 0;
        if (i < n && (char_class(c) & HEX)) {
            if (start < 0) {
                start = i;
                colons = double_colon = 0;
            }
            if (c == ':') {
                colons++;
                double_colon |= i > start && PyUnicode_READ(kind, data, i - 1) == ':';
            }
            continue;
        }
        if (start >= 0 && (colons >= 7 || double_colon) && ip6_run(s, start, i) < 0)
            return -1;
        start = -1;
    }
    return 0;
}

/* The three passes over the characters that need them. */
static inline __attribute__((always_inline)) int
char_passes(const void *data, int kind, struct scan *s)
{
    first_pass(data, kind, s);
    if (s->want_secret && !s->pem && s->longest >= SECRET_RUN && secret_pass(data, kind, s) < 0)
        return -1;
    if (s->want_ip6 && (s->colons >= 7 || s->double_colon) && ip6_pass(data, kind, s) < 0)
        return -1;
    return 0;
}

static inline int at(const uint8_t *shape, Py_ssize_t n, Py_ssize_t j, uint8_t want)
{
    return j >= 0 && j < n && shape[j] == want;
}

static inline int zeros(const uint8_t *shape, Py_ssize_t n, Py_ssize_t j, int count)
{
    if (j < 0 || j + count > n)
        return 0;
    for (int k = 0; k < count; k++)
        if (shape[j + k] != '0')
            return 0;
    return 1;
}

static inline int one_of(const uint8_t *shape, Py_ssize_t n, Py_ssize_t j, uint8_t a, uint8_t b)
{
    return j >= 0 && j < n && (shape[j] == a || shape[j] == b);
}

/* 0{1,3}\. at j: the position after the '.', or -1 */
static inline Py_ssize_t zeros_dot(const uint8_t *shape, Py_ssize_t n, Py_ssize_t j)
{
    int k = 0;
    while (k < 4 && j + k < n && shape[j + k] == '0')
        k++;
    return k >= 1 && k <= 3 && at(shape, n, j + k, '.') ? j + k + 1 : -1;
}

/* Whether one of the number detectors' shape forms (_SHAPE_PATTERNS, _PAREN_PHONE, '+')
   starts at i. */
static int number_form(const uint8_t *shape, Py_ssize_t n, Py_ssize_t i)
{
    switch (shape[i]) {
    case '0':
        if (zeros(shape, n, i, 4)) {
            /* 0000(?:0{9}|[ -]0000[ -]0000[ -]0000|[ -]000000[ -]0000
                   |(?<=000[.-]000[.-]0000)) */
            if (zeros(shape, n, i + 4, 9))
                return 1;
            if (one_of(shape, n, i + 4, ' ', '-')) {
                if (zeros(shape, n, i + 5, 4) && one_of(shape, n, i + 9, ' ', '-') &&
                    zeros(shape, n, i + 10, 4) && one_of(shape, n, i + 14, ' ', '-') &&
                    zeros(shape, n, i + 15, 4))
                    return 1;
                if (zeros(shape, n, i + 5, 6) && one_of(shape, n, i + 11, ' ', '-') &&
                    zeros(shape, n, i + 12, 4))
                    return 1;
            }
            if (zeros(shape, n, i - 8, 3) && one_of(shape, n, i - 5, '.', '-') &&
                zeros(shape, n, i - 4, 3) && one_of(shape, n, i - 1, '.', '-'))
                return 1;
        }
        /* 0\.0{1,3}\.0{1,3}\.0 */
        if (at(shape, n, i + 1, '.')) {
            Py_ssize_t j = zeros_dot(shape, n, i + 2);
            if (j >= 0)
                j = zeros_dot(shape, n, j);
            if (j >= 0 && at(shape, n, j, '0'))
                return 1;
        }
        return 0;
    case 'A': { /* AA00(?: ?[A0]{4}){2} */
        if (!(at(shape, n, i + 1, 'A') && zeros(shape, n, i + 2, 2)))
            return 0;
        Py_ssize_t j = i + 4;
        for (int group = 0; group < 2; group++) {
            if (at(shape, n, j, ' '))
                j++;
            for (int k = 0; k < 4; k++, j++)
                if (!one_of(shape, n, j, 'A', '0'))
                    return 0;
        }
        return 1;
    }
    case '(': { /* \(000\) ?000[.-]0000 */
        if (!(zeros(shape, n, i + 1, 3) && at(shape, n, i + 4, ')')))
            return 0;
        Py_ssize_t j = i + 5;
        if (at(shape, n, j, ' '))
            j++;
        return zeros(shape, n, j, 3) && one_of(shape, n, j + 3, '.', '-') &&
               zeros(shape, n, j + 4, 4);
    }
    case '+':
        return 1;
    default:
        return 0;
    }
}

/* (lo, hi) appended to *windows, a list made at the first one */
static int add_window(PyObject **windows, Py_ssize_t lo, Py_ssize_t hi)
{
    if (*windows == NULL && (*windows = PyList_New(0)) == NULL)
        return -1;
    PyObject *pair = Py_BuildValue("(nn)", lo, hi);
    if (pair == NULL)
        return -1;
    int rc = PyList_Append(*windows, pair);
    Py_DECREF(pair);
    return rc;
}

/* The windows around every number form, merged (_numeric_windows). */
static int number_windows(const uint8_t *shape, Py_ssize_t n, PyObject **windows)
{
    Py_ssize_t lo = -1, hi = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* every form starts with '(', '+', "00", "0." or "AA": a quick refusal of most places
           (shape[n] is a 0 byte) */
        uint8_t first = FORM_START[shape[i]];
        if (!first)
            continue;
        uint8_t b = shape[i + 1];
        if (first == '0' ? b != '0' && b != '.' : first == 'A' && b != 'A')
            continue;
        if (!number_form(shape, n, i))
            continue;
        Py_ssize_t start = i > BEFORE_NUMERIC ? i - BEFORE_NUMERIC : 0;
        Py_ssize_t end = n - i > LONGEST_NUMERIC ? i + LONGEST_NUMERIC : n;
        if (lo >= 0 && start <= hi) {
            hi = end > hi ? end : hi;
            continue;
        }
        if (lo >= 0 && add_window(windows, lo, hi) < 0)
            return -1;
        lo = start;
        hi = end;
    }
    return lo >= 0 ? add_window(windows, lo, hi) : 0;
}

/* The screen of one str: the flags found (of want), and the number and secret windows (new
   references, NULL when there is none). -1 with an exception set on failure. */
static int screen_text(PyObject *text, long want, long *found, PyObject **numbers,
                       PyObject **secrets, PyObject **ip6)
{
    *numbers = *secrets = *ip6 = NULL;
    if (PyUnicode_READY(text) < 0)
        return -1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const void *data = PyUnicode_DATA(text);
    uint8_t stack[STACK_SHAPE + 1];
    struct scan s = {.n = n,
                     .shape = n <= STACK_SHAPE ? stack : PyMem_Malloc((size_t)n + 1),
                     .want_secret = (want & SECRET) != 0,
                     .want_ip6 = (want & IP6) != 0,
                     .secret_lo = -1,
                     .secret_hi = -1};
    if (s.shape == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s.shape[n] = 0;
    int rc;
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND:
        rc = char_passes(data, PyUnicode_1BYTE_KIND, &s);
        break;
    case PyUnicode_2BYTE_KIND:
        rc = char_passes(data, PyUnicode_2BYTE_KIND, &s);
        break;
    default:
        rc = char_passes(data, PyUnicode_4BYTE_KIND, &s);
        break;
    }
    if (rc == 0 && s.pem && s.want_secret) { /* a PEM block may span the string: all of it */
        s.found |= SECRET;
        Py_CLEAR(s.secret);
        rc = add_window(&s.secret, 0, n);
    }
    else if (rc == 0 && s.secret_lo >= 0) {
        rc = add_window(&s.secret, s.secret_lo, s.secret_hi);
    }
    if (rc == 0 && (want & NUMERIC) && (s.bits & DIGIT))
        rc = number_windows(s.shape, n, numbers);
    if (s.shape != stack)
        PyMem_Free(s.shape);
    if (rc < 0) {
        Py_CLEAR(*numbers);
        Py_CLEAR(s.secret);
        Py_CLEAR(s.ip6);
        return -1;
    }
    *found = s.found & want;
    *secrets = s.secret;
    *ip6 = s.ip6;
    return 0;
}

/* (flags, numbers, secrets, ip6) from screen_text's results (stolen; NULL lists made empty) */
static PyObject *answer(long found, PyObject *numbers, PyObject *secrets, PyObject *ip6)
{
    if ((numbers == NULL && (numbers = PyList_New(0)) == NULL) ||
        (secrets == NULL && (secrets = PyList_New(0)) == NULL) ||
        (ip6 == NULL && (ip6 = PyList_New(0)) == NULL)) {
        Py_XDECREF(numbers);
        Py_XDECREF(secrets);
        Py_XDECREF(ip6);
        return NULL;
    }
    return Py_BuildValue("(lNNN)", found, numbers, secrets, ip6);
}

static int want_arg(PyObject *arg, long *want)
{
    *want = PyLong_AsLong(arg);
    return *want == -1 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *screen(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    long want, found;
    PyObject *numbers, *secrets, *ip6;
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "screen(text: str, want: int)");
        return NULL;
    }
    if (want_arg(args[1], &want) < 0 ||
        screen_text(args[0], want, &found, &numbers, &secrets, &ip6) < 0)
        return NULL;
    return answer(found, numbers, secrets, ip6);
}

/* ---- the JSON walk ---------------------------------------------------------------------- */

struct walk {
    long want;
    Py_ssize_t shortest;
    PyObject *fn;
};

static PyObject *walk_value(struct walk *w, PyObject *value);

/* A str: itself when the screen finds nothing, else fn(text, flags, numbers, secrets). */
static PyObject *walk_str(struct walk *w, PyObject *text)
{
    long found;
    PyObject *numbers, *secrets, *ip6;
    if (PyUnicode_GET_LENGTH(text) < w->shortest)
        return Py_NewRef(text);
    if (screen_text(text, w->want, &found, &numbers, &secrets, &ip6) < 0)
        return NULL;
    if (found == 0 && numbers == NULL) { /* secrets and ip6 come with a flag */
        return Py_NewRef(text);
    }
    PyObject *screened = answer(found, numbers, secrets, ip6);
    if (screened == NULL)
        return NULL;
    PyObject *out = PyObject_CallFunctionObjArgs(
        w->fn, text, PyTuple_GET_ITEM(screened, 0), PyTuple_GET_ITEM(screened, 1),
        PyTuple_GET_ITEM(screened, 2), PyTuple_GET_ITEM(screened, 3), NULL);
    Py_DECREF(screened);
    if (out != NULL && !PyUnicode_Check(out)) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_TypeError, "the redaction callback must return a str");
        return NULL;
    }
    return out;
}

/* A dict: itself when no value changed, else a copy with the new values. */
static PyObject *walk_dict(struct walk *w, PyObject *dict)
{
    PyObject *out = NULL, *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(dict, &pos, &key, &value)) {
        if (!(PyUnicode_CheckExact(value) || PyDict_CheckExact(value) ||
              PyList_CheckExact(value)))
            continue;
        Py_INCREF(key); /* held across the callback */
        Py_INCREF(value);
        PyObject *new = walk_value(w, value);
        int rc = new == NULL ? -1 : 0;
        if (rc == 0 && new != value) {
            if (out == NULL && (out = PyDict_Copy(dict)) == NULL)
                rc = -1;
            if (rc == 0)
                rc = PyDict_SetItem(out, key, new);
        }
        Py_XDECREF(new);
        Py_DECREF(value);
        Py_DECREF(key);
        if (rc < 0) {
            Py_XDECREF(out);
            return NULL;
        }
    }
    return out != NULL ? out : Py_NewRef(dict);
}

/* A list: itself when no item changed, else a copy with the new items. */
static PyObject *walk_list(struct walk *w, PyObject *list)
{
    PyObject *out = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *value = PyList_GET_ITEM(list, i);
        if (!(PyUnicode_CheckExact(value) || PyDict_CheckExact(value) ||
              PyList_CheckExact(value)))
            continue;
        Py_INCREF(value);
        PyObject *new = walk_value(w, value);
        int rc = new == NULL ? -1 : 0;
        if (rc == 0 && new != value) {
            if (out == NULL && (out = PyList_GetSlice(list, 0, PyList_GET_SIZE(list))) == NULL)
                rc = -1;
            if (rc == 0 && i < PyList_GET_SIZE(out))
                rc = PyList_SetItem(out, i, Py_NewRef(new));
        }
        Py_XDECREF(new);
        Py_DECREF(value);
        if (rc < 0) {
            Py_XDECREF(out);
            return NULL;
        }
    }
    return out != NULL ? out : Py_NewRef(list);
}

static PyObject *walk_value(struct walk *w, PyObject *value)
{
    if (PyUnicode_CheckExact(value))
        return walk_str(w, value);
    if (Py_EnterRecursiveCall(" while redacting a JSON value"))
        return NULL;
    PyObject *out = PyDict_CheckExact(value)   ? walk_dict(w, value)
                    : PyList_CheckExact(value) ? walk_list(w, value)
                                               : Py_NewRef(value);
    Py_LeaveRecursiveCall();
    return out;
}

static PyObject *walk(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    struct walk w;
    if (nargs != 4 || !PyLong_Check(args[1]) || !PyLong_Check(args[2]) ||
        !PyCallable_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "walk(value, want: int, shortest: int, fn)");
        return NULL;
    }
    if (want_arg(args[1], &w.want) < 0)
        return NULL;
    w.shortest = PyLong_AsSsize_t(args[2]);
    if (w.shortest == -1 && PyErr_Occurred())
        return NULL;
    w.fn = args[3];
    return walk_value(&w, args[0]);
}

static PyMethodDef methods[] = {
    {"screen", (PyCFunction)(void (*)(void))screen, METH_FASTCALL,
     "screen(text, want) -> (flags, number_windows, secret_windows, ip6_windows)\n\n"
     "Which of the detectors in want (SECRET | EMAIL | IP6 | NUMERIC) may match in text, and\n"
     "the (start, end) windows where a number detector, the secret one and the IPv6 one may:\n"
     "goldloop.domain.redaction's _screen_py in one C pass, the same answer or a wider one."},
    {"walk", (PyCFunction)(void (*)(void))walk, METH_FASTCALL,
     "walk(value, want, shortest, fn) -> value\n\n"
     "A JSON value with fn(text, *screen(text, want)) in place of each str\n"
     "of at least shortest characters that the screen finds a candidate in: nested dicts and\n"
     "lists (exactly those types) copied where a value changed, the rest kept as it is.\n"
     "goldloop.domain.redaction's _walk with its screen in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "goldloop._redaction_scan",
    "The built-in redaction detectors' pre-screens in one C pass.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__redaction_scan(void)
{
    for (int c = 0; c < 256; c++) {
        SHAPE[c] = c < 128 ? (uint8_t)c : '0';
        CLASS[c] = c < 128 ? 0 : DIGIT;
    }
    for (int c = '0'; c <= '9'; c++) {
        SHAPE[c] = '0';
        CLASS[c] = TOKEN | DIGIT;
    }
    SHAPE['?'] = '0';
    CLASS['?'] = DIGIT;
    for (int c = 'A'; c <= 'Z'; c++) {
        SHAPE[c] = 'A';
        CLASS[c] = TOKEN;
        CLASS[c + 32] = TOKEN;
    }
    for (const char *p = "_.~+/="; *p; p++)
        CLASS[(uint8_t)*p] = TOKEN;
    CLASS['-'] = TOKEN | SPECIAL;
    CLASS['@'] = SPECIAL;
    for (const char *p = "0A(+"; *p; p++)
        FORM_START[(uint8_t)*p] = (uint8_t)*p;
    CLASS[':'] = SPECIAL | HEX;
    for (const char *p = "0123456789ABCDEFabcdef"; *p; p++)
        CLASS[(uint8_t)*p] |= HEX;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "SECRET", SECRET) < 0 ||
        PyModule_AddIntConstant(m, "EMAIL", EMAIL) < 0 ||
        PyModule_AddIntConstant(m, "IP6", IP6) < 0 ||
        PyModule_AddIntConstant(m, "NUMERIC", NUMERIC) < 0)
        Py_CLEAR(m);
    return m;
}

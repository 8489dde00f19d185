/*
 * goldloop._redaction_scan: the built-in redaction detectors' pre-screens in one C pass.
 *
 * goldloop.domain.redaction decides which built-in detectors run on a string, and where, with
 * cheap necessary conditions of a match (see _screen_py there): a run of 15+ token characters
 * or "-----" (a secret), an '@' (an email), "::" or 7+ colons (IPv6), and windows around the
 * places where the string's shape (every digit and every non-ASCII character '0', every capital
 * 'A') holds the form of a card, a North American number, an IBAN, an IPv4 address, "(000)
 * 000-0000" or a '+' (the number detectors). In Python that is a dozen C passes over the string
 * with a Python call between each; here it is one pass over the characters that builds the
 * shape and the flags, and one over the shape for the number forms.
 *
 * The answer is the Python one or wider, never narrower: each form is checked at every position
 * (the Python screen takes non-overlapping matches, a subset of these), so the windows cover
 * every window the Python screen gives. tests/test_redaction_screens.py runs the two side by
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

static uint8_t SHAPE[128]; /* _SHAPE for ASCII; any other character is '0' */
static uint8_t TOKEN[128]; /* 1 for the characters of _TOKEN's 'w' */

struct flags {
    int found;
    int digit, colons, double_colon;
};

/* The first pass, for one storage kind (the compiler makes three copies of it). */
static inline __attribute__((always_inline)) void
first_pass(const void *data, int kind, Py_ssize_t n, uint8_t *shape, struct flags *f)
{
    Py_ssize_t run = 0, dashes = 0;
    Py_UCS4 prev = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 128) {
            uint8_t s = SHAPE[c];
            shape[i] = s;
            run = TOKEN[c] ? run + 1 : 0;
            if (run >= SECRET_RUN)
                f->found |= SECRET;
            if (s == '0') {
                f->digit = 1;
            }
            else if (c == '-') {
                if (++dashes >= 5)
                    f->found |= SECRET;
                prev = c;
                continue;
            }
            else if (c == '@') {
                f->found |= EMAIL;
            }
            else if (c == ':') {
                f->colons++;
                if (prev == ':')
                    f->double_colon = 1;
            }
        }
        else {
            shape[i] = '0'; /* encode("ascii", "replace") gives '?', taken for a digit */
            f->digit = 1;
            run = 0;
        }
        dashes = 0;
        prev = c;
    }
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

static int append_window(PyObject *windows, Py_ssize_t lo, Py_ssize_t hi)
{
    PyObject *pair = Py_BuildValue("(nn)", lo, hi);
    if (pair == NULL)
        return -1;
    int rc = PyList_Append(windows, pair);
    Py_DECREF(pair);
    return rc;
}

/* The windows around every number form, merged (_numeric_windows). */
static int number_windows(const uint8_t *shape, Py_ssize_t n, PyObject *windows)
{
    Py_ssize_t lo = -1, hi = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!number_form(shape, n, i))
            continue;
        Py_ssize_t start = i > BEFORE_NUMERIC ? i - BEFORE_NUMERIC : 0;
        Py_ssize_t end = n - i > LONGEST_NUMERIC ? i + LONGEST_NUMERIC : n;
        if (lo >= 0 && start <= hi) {
            hi = end > hi ? end : hi;
            continue;
        }
        if (lo >= 0 && append_window(windows, lo, hi) < 0)
            return -1;
        lo = start;
        hi = end;
    }
    return lo >= 0 ? append_window(windows, lo, hi) : 0;
}

static PyObject *screen(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "screen(text: str, want: int)");
        return NULL;
    }
    PyObject *text = args[0];
    if (PyUnicode_READY(text) < 0)
        return NULL;
    long want = PyLong_AsLong(args[1]);
    if (want == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const void *data = PyUnicode_DATA(text);
    uint8_t stack[STACK_SHAPE];
    uint8_t *shape = n <= STACK_SHAPE ? stack : PyMem_Malloc((size_t)n);
    if (shape == NULL)
        return PyErr_NoMemory();
    struct flags f = {0, 0, 0, 0};
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND:
        first_pass(data, PyUnicode_1BYTE_KIND, n, shape, &f);
        break;
    case PyUnicode_2BYTE_KIND:
        first_pass(data, PyUnicode_2BYTE_KIND, n, shape, &f);
        break;
    default:
        first_pass(data, PyUnicode_4BYTE_KIND, n, shape, &f);
        break;
    }
    if (f.colons >= 7 || f.double_colon)
        f.found |= IP6;
    PyObject *windows = PyList_New(0);
    if (windows != NULL && (want & NUMERIC) && f.digit &&
        number_windows(shape, n, windows) < 0)
        Py_CLEAR(windows);
    if (shape != stack)
        PyMem_Free(shape);
    if (windows == NULL)
        return NULL;
    return Py_BuildValue("(lN)", (long)f.found & want, windows);
}

static PyMethodDef methods[] = {
    {"screen", (PyCFunction)(void (*)(void))screen, METH_FASTCALL,
     "screen(text, want) -> (flags, windows)\n\n"
     "Which of the detectors in want (SECRET | EMAIL | IP6 | NUMERIC) may match in text, and\n"
     "the (start, end) windows where a number detector may: goldloop.domain.redaction's\n"
     "_screen_py in one C pass, the same answer or a wider one."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "goldloop._redaction_scan",
    "The built-in redaction detectors' pre-screens in one C pass.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__redaction_scan(void)
{
    for (int c = 0; c < 128; c++) {
        SHAPE[c] = (uint8_t)c;
        TOKEN[c] = 0;
    }
    for (int c = '0'; c <= '9'; c++) {
        SHAPE[c] = '0';
        TOKEN[c] = 1;
    }
    SHAPE['?'] = '0';
    for (int c = 'A'; c <= 'Z'; c++) {
        SHAPE[c] = 'A';
        TOKEN[c] = 1;
        TOKEN[c + 32] = 1;
    }
    for (const char *p = "_.~+/=-"; *p; p++)
        TOKEN[(uint8_t)*p] = 1;
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

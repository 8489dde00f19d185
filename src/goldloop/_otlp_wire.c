/*
 * goldloop._otlp_wire: OTLP trace requests decoded from the protobuf wire format, in C.
 *
 * The generated opentelemetry-proto classes parse a request quickly, but every field read
 * afterwards builds a wrapper object, and walking a span's attributes that way was most of an
 * OTLP span's decode cost. This module reads the few message types of ExportTraceServiceRequest
 * in one pass over the bytes and builds the records goldloop.domain.otel.decode defines:
 * OtelSpan objects (the class is passed in) with attributes, events and links as plain dicts.
 *
 * It follows protobuf's parsing rules as the generated classes do, and tests/test_otlp_wire.py
 * holds the two to the same output on valid and corrupted bodies: fields may come in any order;
 * a field whose number or wire type is unknown is skipped; a singular scalar given twice keeps
 * the last value and a singular message given twice is merged; string fields must be valid
 * UTF-8; 64-bit integers are two's complement. A length that runs past its message, a truncated
 * varint or nesting deeper than MAX_DEPTH makes the whole body invalid (ValueError). Where the
 * wire format leaves a parser a choice, this one makes upb's (the generated classes' parser):
 * a tag or a length takes at most 5 bytes; the request is at depth 0 and every message inside
 * another, an unknown group included, one deeper; field number 0 is invalid in a message but
 * skipped inside an unknown group. bench/fuzz_otlp_wire.py looks for the next difference.
 *
 * Every read is checked against the end of the message that contains it: the body is untrusted
 * network input.
 *
 * json_spaced, at the end, is goldloop.domain.otel_dedupe.spaced for ASCII text: the check of an
 * attribute's JSON spelling that ingestion makes for most GenAI content attributes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 100 /* the deepest message, the request being 0: upb's default limit */

typedef const uint8_t *ptr;

static PyObject *s_time_unix_nano, *s_name, *s_attributes, *s_trace_id, *s_span_id,
    *s_trace_state, *s_version, *s_empty;

static int fail(const char *message)
{
    PyErr_SetString(PyExc_ValueError, message);
    return -1;
}

/* ---- the wire format -------------------------------------------------------------------- */

static int read_varint(ptr *pp, ptr end, uint64_t *out)
{
    ptr p = *pp;
    uint64_t result = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (p >= end)
            return fail("the body ends inside a field");
        uint8_t b = *p++;
        if (shift < 64)
            result |= (uint64_t)(b & 0x7F) << shift; /* bits past 64 are dropped, as protobuf */
        if (b < 0x80) {
            *pp = p;
            *out = result;
            return 0;
        }
    }
    return fail("a varint is longer than 10 bytes");
}

/* A tag or a length: a varint of at most 5 bytes whose value fits in 32 bits (upb's rule; a
 * longer spelling of a small number is invalid there too). */
static int read_varint32(ptr *pp, ptr end, uint64_t *out)
{
    ptr p = *pp;
    uint64_t result = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (p >= end)
            return fail("the body ends inside a field");
        uint8_t b = *p++;
        result |= (uint64_t)(b & 0x7F) << shift;
        if (b < 0x80) {
            if (result > UINT32_MAX)
                return fail("a tag or a length is larger than 32 bits");
            *pp = p;
            *out = result;
            return 0;
        }
    }
    return fail("a tag or a length is longer than 5 bytes");
}

static inline int read_tag(ptr *pp, ptr end, uint64_t *tag)
{
    if (*pp < end && **pp < 0x80) {
        *tag = *(*pp)++;
        return 0;
    }
    return read_varint32(pp, end, tag);
}

/* The bounds [*start, *stop) of the length-delimited value whose length is at *pp. */
static int read_len(ptr *pp, ptr end, ptr *start, ptr *stop)
{
    uint64_t n;
    if (read_varint32(pp, end, &n) < 0)
        return -1;
    if (n > (uint64_t)(end - *pp))
        return fail("a length-delimited field runs past the end of its message");
    *start = *pp;
    *stop = *pp + n;
    *pp = *stop;
    return 0;
}

static int read_fixed(ptr *pp, ptr end, size_t size, uint64_t *out)
{
    if ((size_t)(end - *pp) < size)
        return fail("a fixed-size field runs past the end of its message");
    uint64_t v = 0;
    for (size_t k = 0; k < size; k++)
        v |= (uint64_t)(*pp)[k] << (8 * k); /* little-endian on the wire, whatever the host */
    *pp += size;
    *out = v;
    return 0;
}

/* The value of an unknown field whose tag was just read, in a message at `depth`, skipped. A
 * group is a message one deeper; inside it, as in upb, field number 0 is skipped like any
 * other and only the end tag must match. */
static int skip_value(ptr *pp, ptr end, uint64_t tag, int depth)
{
    uint64_t field = tag >> 3, ignored;
    ptr s, e;
    switch (tag & 7) {
    case 0:
        return read_varint(pp, end, &ignored);
    case 1:
        return read_fixed(pp, end, 8, &ignored);
    case 2:
        return read_len(pp, end, &s, &e);
    case 5:
        return read_fixed(pp, end, 4, &ignored);
    case 3: /* a group (proto2): skip to its matching end tag */
        if (depth + 1 > MAX_DEPTH)
            return fail("message nesting is too deep");
        for (;;) {
            uint64_t inner;
            if (*pp >= end)
                return fail("a group has no end");
            if (read_tag(pp, end, &inner) < 0)
                return -1;
            if ((inner & 7) == 4) {
                if ((inner >> 3) != field)
                    return fail("a group ends with the wrong field number");
                return 0;
            }
            if (skip_value(pp, end, inner, depth + 1) < 0)
                return -1;
        }
    default:
        return fail("a wire type is not valid here");
    }
}

/* An unknown field of a message at `depth`, whose tag was just read, skipped. */
static int skip_field(ptr *pp, ptr end, uint64_t tag, int depth)
{
    if ((tag >> 3) == 0)
        return fail("a field number is not valid");
    return skip_value(pp, end, tag, depth);
}

static PyObject *utf8(ptr s, ptr e)
{
    PyObject *out = PyUnicode_DecodeUTF8((const char *)s, e - s, NULL);
    if (out == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        fail("a string field is not valid UTF-8");
    }
    return out;
}

/* A string field that is not kept (schema URLs, entity references) is still checked, as the
 * generated classes check it: invalid UTF-8 anywhere makes the body invalid. */
static int check_utf8(ptr *pp, ptr end)
{
    ptr s, e;
    if (read_len(pp, end, &s, &e) < 0)
        return -1;
    PyObject *text = utf8(s, e);
    Py_XDECREF(text);
    return text == NULL ? -1 : 0;
}

static PyObject *hex(ptr s, ptr e)
{
    static const char digits[] = "0123456789abcdef";
    Py_ssize_t n = e - s;
    PyObject *out = PyUnicode_New(2 * n, 127);
    if (out == NULL)
        return NULL;
    Py_UCS1 *d = PyUnicode_1BYTE_DATA(out);
    for (Py_ssize_t k = 0; k < n; k++) {
        d[2 * k] = digits[s[k] >> 4];
        d[2 * k + 1] = digits[s[k] & 15];
    }
    return out;
}

static PyObject *base64(ptr s, ptr e)
{
    static const char table[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    Py_ssize_t n = e - s;
    PyObject *out = PyUnicode_New(4 * ((n + 2) / 3), 127);
    if (out == NULL)
        return NULL;
    Py_UCS1 *d = PyUnicode_1BYTE_DATA(out);
    Py_ssize_t k = 0;
    for (; k + 2 < n; k += 3) {
        uint32_t v = (uint32_t)s[k] << 16 | (uint32_t)s[k + 1] << 8 | s[k + 2];
        *d++ = table[v >> 18];
        *d++ = table[(v >> 12) & 63];
        *d++ = table[(v >> 6) & 63];
        *d++ = table[v & 63];
    }
    if (k < n) {
        uint32_t v = (uint32_t)s[k] << 16 | (k + 1 < n ? (uint32_t)s[k + 1] << 8 : 0);
        *d++ = table[v >> 18];
        *d++ = table[(v >> 12) & 63];
        *d++ = k + 1 < n ? table[(v >> 6) & 63] : '=';
        *d++ = '=';
    }
    return out;
}

static int64_t as_int64(uint64_t v)
{
    return v >= (UINT64_C(1) << 63) ? -(int64_t)(~v) - 1 : (int64_t)v;
}

static int32_t as_int32(uint64_t v) /* an int32 or enum field: its low 32 bits */
{
    uint32_t u = (uint32_t)(v & 0xFFFFFFFFu);
    return u >= 0x80000000u ? (int32_t)(u - 0x80000000u) - 0x7FFFFFFF - 1 : (int32_t)u;
}

/* Replace *slot by value (a new reference, or NULL for an error). */
static int set(PyObject **slot, PyObject *value)
{
    if (value == NULL)
        return -1;
    Py_XSETREF(*slot, value);
    return 0;
}

/* ---- common.proto ----------------------------------------------------------------------- */

static int attributes_into(ptr p, ptr end, uint64_t field_tag, PyObject *into, int depth);

static int too_deep(int depth)
{
    return depth > MAX_DEPTH ? fail("message nesting is too deep") : 0;
}

/* An AnyValue message [p, end) at `depth` merged into *value, a Python value (see domain/otel/decode.py;
 * None when empty), *which being the member of its oneof that *value came from (0 for none).
 * As protobuf merges a message given twice, a second array or key-value list extends the
 * first and any other member replaces it. */
static int any_value_into(ptr p, ptr end, int depth, PyObject **value, int *which)
{
    if (too_deep(depth) < 0)
        return -1;
    ptr s, e;
    uint64_t tag, v;
    while (p < end) {
        if (read_tag(&p, end, &tag) < 0)
            return -1;
        switch (tag) {
        case 0x0A: /* string_value */
            if (read_len(&p, end, &s, &e) < 0 || set(value, utf8(s, e)) < 0)
                return -1;
            *which = 1;
            break;
        case 0x10: /* bool_value */
            if (read_varint(&p, end, &v) < 0)
                return -1;
            set(value, PyBool_FromLong(v != 0));
            *which = 2;
            break;
        case 0x18: /* int_value */
            if (read_varint(&p, end, &v) < 0 || set(value, PyLong_FromLongLong(as_int64(v))) < 0)
                return -1;
            *which = 3;
            break;
        case 0x21: /* double_value */
            if ((size_t)(end - p) < 8) {
                fail("a fixed-size field runs past the end of its message");
                return -1;
            }
            if (set(value, PyFloat_FromDouble(PyFloat_Unpack8((const char *)p, 1))) < 0)
                return -1;
            p += 8;
            *which = 4;
            break;
        case 0x2A: { /* array_value: a repeated field inside, so a second one extends the first */
            if (read_len(&p, end, &s, &e) < 0 || too_deep(depth + 1) < 0)
                return -1;
            if (*which != 5 && set(value, PyList_New(0)) < 0)
                return -1;
            *which = 5;
            ptr q = s;
            while (q < e) {
                if (read_tag(&q, e, &tag) < 0)
                    return -1;
                if (tag != 0x0A) {
                    if (skip_field(&q, e, tag, depth + 1) < 0)
                        return -1;
                    continue;
                }
                ptr is, ie;
                if (read_len(&q, e, &is, &ie) < 0)
                    return -1;
                PyObject *item = Py_NewRef(Py_None);
                int item_which = 0;
                if (any_value_into(is, ie, depth + 2, &item, &item_which) < 0) {
                    Py_DECREF(item);
                    return -1;
                }
                int rc = PyList_Append(*value, item);
                Py_DECREF(item);
                if (rc < 0)
                    return -1;
            }
            break;
        }
        case 0x32: /* kvlist_value: likewise */
            if (read_len(&p, end, &s, &e) < 0)
                return -1;
            if (*which != 6 && set(value, PyDict_New()) < 0)
                return -1;
            *which = 6;
            if (attributes_into(s, e, 0x0A, *value, depth + 1) < 0)
                return -1;
            break;
        case 0x3A: /* bytes_value */
            if (read_len(&p, end, &s, &e) < 0 || set(value, base64(s, e)) < 0)
                return -1;
            *which = 7;
            break;
        case 0x40: /* string_value_strindex (profiles' string table): not kept, but a member */
            if (read_varint(&p, end, &v) < 0 || set(value, Py_NewRef(Py_None)) < 0)
                return -1;
            *which = 8;
            break;
        default:
            if (skip_field(&p, end, tag, depth) < 0)
                return -1;
        }
    }
    return 0;
}

/* One KeyValue message [p, end) at `depth` added to the dict `into`. */
static int key_value_into(ptr p, ptr end, PyObject *into, int depth)
{
    PyObject *key = Py_NewRef(s_empty), *value = Py_NewRef(Py_None);
    int which = 0;
    ptr s, e;
    uint64_t tag;
    if (too_deep(depth) < 0)
        goto error;
    while (p < end) {
        if (read_tag(&p, end, &tag) < 0)
            goto error;
        if (tag == 0x0A) {
            if (read_len(&p, end, &s, &e) < 0 || set(&key, utf8(s, e)) < 0)
                goto error;
        }
        else if (tag == 0x12) {
            if (read_len(&p, end, &s, &e) < 0 ||
                any_value_into(s, e, depth + 1, &value, &which) < 0)
                goto error;
        }
        else if (skip_field(&p, end, tag, depth) < 0)
            goto error;
    }
    int rc = PyDict_SetItem(into, key, value);
    Py_DECREF(key);
    Py_DECREF(value);
    return rc;
error:
    Py_DECREF(key);
    Py_DECREF(value);
    return -1;
}

/* The KeyValue fields numbered by `field_tag` in message [p, end) at `depth`, added to
 * `into`; other fields are skipped. */
static int attributes_into(ptr p, ptr end, uint64_t field_tag, PyObject *into, int depth)
{
    ptr s, e;
    uint64_t tag;
    if (too_deep(depth) < 0)
        return -1;
    while (p < end) {
        if (read_tag(&p, end, &tag) < 0)
            return -1;
        if (tag == field_tag) {
            if (read_len(&p, end, &s, &e) < 0 || key_value_into(s, e, into, depth + 1) < 0)
                return -1;
        }
        else if (skip_field(&p, end, tag, depth) < 0)
            return -1;
    }
    return 0;
}

/* An InstrumentationScope (depth 3) merged into `scope` ({"name", "version"[, "attributes"]}). */
static int scope_into(ptr p, ptr end, PyObject *scope)
{
    ptr s, e;
    uint64_t tag;
    while (p < end) {
        if (read_tag(&p, end, &tag) < 0)
            return -1;
        if (tag == 0x0A || tag == 0x12) {
            if (read_len(&p, end, &s, &e) < 0)
                return -1;
            PyObject *text = utf8(s, e);
            if (text == NULL)
                return -1;
            int rc = PyDict_SetItem(scope, tag == 0x0A ? s_name : s_version, text);
            Py_DECREF(text);
            if (rc < 0)
                return -1;
        }
        else if (tag == 0x1A) {
            if (read_len(&p, end, &s, &e) < 0)
                return -1;
            PyObject *attrs = PyDict_GetItemWithError(scope, s_attributes); /* borrowed */
            if (attrs == NULL) {
                if (PyErr_Occurred())
                    return -1;
                attrs = PyDict_New();
                if (attrs == NULL)
                    return -1;
                int rc = PyDict_SetItem(scope, s_attributes, attrs);
                Py_DECREF(attrs);
                if (rc < 0)
                    return -1;
            }
            if (key_value_into(s, e, attrs, 4) < 0)
                return -1;
        }
        else if (skip_field(&p, end, tag, 3) < 0)
            return -1;
    }
    return 0;
}

/* A Resource (depth 2) merged into `resource` (its attributes); its entity references, all strings, are
 * only checked. */
static int resource_into(ptr p, ptr end, PyObject *resource)
{
    ptr s, e;
    uint64_t tag;
    while (p < end) {
        if (read_tag(&p, end, &tag) < 0)
            return -1;
        if (tag == 0x0A) {
            if (read_len(&p, end, &s, &e) < 0 || key_value_into(s, e, resource, 3) < 0)
                return -1;
        }
        else if (tag == 0x1A) { /* EntityRef: fields 1-4, every one a string */
            if (read_len(&p, end, &s, &e) < 0)
                return -1;
            while (s < e) {
                if (read_tag(&s, e, &tag) < 0)
                    return -1;
                int rc = (tag >> 3) >= 1 && (tag >> 3) <= 4 && (tag & 7) == 2
                             ? check_utf8(&s, e)
                             : skip_field(&s, e, tag, 3);
                if (rc < 0)
                    return -1;
            }
        }
        else if (skip_field(&p, end, tag, 2) < 0)
            return -1;
    }
    return 0;
}

/* ---- trace.proto ------------------------------------------------------------------------ */

static PyObject *event_record(ptr p, ptr end)
{
    uint64_t time_ns = 0, tag;
    PyObject *name = Py_NewRef(s_empty), *attrs = PyDict_New(), *out = NULL, *t = NULL;
    ptr s, e;
    if (attrs == NULL)
        goto done;
    while (p < end) {
        if (read_tag(&p, end, &tag) < 0)
            goto done;
        if (tag == 0x09) {
            if (read_fixed(&p, end, 8, &time_ns) < 0)
                goto done;
        }
        else if (tag == 0x12) {
            if (read_len(&p, end, &s, &e) < 0 || set(&name, utf8(s, e)) < 0)
                goto done;
        }
        else if (tag == 0x1A) {
            if (read_len(&p, end, &s, &e) < 0 || key_value_into(s, e, attrs, 5) < 0)
                goto done;
        }
        else if (skip_field(&p, end, tag, 4) < 0) /* dropped_attributes_count is not kept */
            goto done;
    }
    t = PyLong_FromUnsignedLongLong(time_ns);
    if (t != NULL)
        out = Py_BuildValue("{OOOOOO}", s_time_unix_nano, t, s_name, name, s_attributes, attrs);
done:
    Py_XDECREF(t);
    Py_DECREF(name);
    Py_XDECREF(attrs);
    return out;
}

static PyObject *link_record(ptr p, ptr end)
{
    uint64_t tag;
    ptr trace_s = p, trace_e = p, span_s = p, span_e = p, s, e;
    PyObject *state = Py_NewRef(s_empty), *attrs = PyDict_New(), *out = NULL;
    PyObject *trace_hex = NULL, *span_hex = NULL;
    if (attrs == NULL)
        goto done;
    while (p < end) {
        if (read_tag(&p, end, &tag) < 0)
            goto done;
        if (tag == 0x0A) {
            if (read_len(&p, end, &trace_s, &trace_e) < 0)
                goto done;
        }
        else if (tag == 0x12) {
            if (read_len(&p, end, &span_s, &span_e) < 0)
                goto done;
        }
        else if (tag == 0x1A) {
            if (read_len(&p, end, &s, &e) < 0 || set(&state, utf8(s, e)) < 0)
                goto done;
        }
        else if (tag == 0x22) {
            if (read_len(&p, end, &s, &e) < 0 || key_value_into(s, e, attrs, 5) < 0)
                goto done;
        }
        else if (skip_field(&p, end, tag, 4) < 0)
            goto done;
    }
    trace_hex = hex(trace_s, trace_e);
    span_hex = trace_hex ? hex(span_s, span_e) : NULL;
    if (span_hex != NULL)
        out = Py_BuildValue("{OOOOOOOO}", s_trace_id, trace_hex, s_span_id, span_hex,
                            s_trace_state, state, s_attributes, attrs);
done:
    Py_XDECREF(trace_hex);
    Py_XDECREF(span_hex);
    Py_DECREF(state);
    Py_XDECREF(attrs);
    return out;
}

/* A 16- or 8-byte id as hex; NULL with *bad set (not an exception) when it cannot be used. */
static PyObject *span_id_hex(ptr s, ptr e, Py_ssize_t size, const char *what, PyObject **bad)
{
    Py_ssize_t n = e - s;
    if (n != size) {
        *bad = PyUnicode_FromFormat("%s has %zd bytes, expected %zd", what, n, size);
        return NULL;
    }
    for (Py_ssize_t k = 0; k < n; k++)
        if (s[k] != 0)
            return hex(s, e);
    *bad = PyUnicode_FromFormat("%s is all zeros", what);
    return NULL;
}

enum { F_TRACE, F_SPAN, F_PARENT, F_NAME, F_KIND, F_START, F_END, F_ATTRS, F_EVENTS, F_LINKS,
       F_CODE, F_MESSAGE, F_RESOURCE, F_SCOPE, F_STATE, F_FLAGS, F_DROPPED, N_FIELDS };

/* One Span [p, end) (depth 3): appended to `spans` as span_type(...), or, if an id cannot be used, a
 * message appended to `problems`. */
static int span(ptr p, ptr end, PyObject *resource, PyObject *scope, PyObject *span_type,
                PyObject *spans, PyObject *problems)
{
    ptr trace_s = p, trace_e = p, id_s = p, id_e = p, parent_s = p, parent_e = p, s, e;
    uint64_t tag, v, start_ns = 0, end_ns = 0, flags = 0;
    uint64_t kind = 0, code = 0, dropped[3] = {0, 0, 0};
    PyObject *f[N_FIELDS] = {NULL};
    PyObject *bad = NULL;
    int rc = -1;
    f[F_NAME] = Py_NewRef(s_empty);
    f[F_STATE] = Py_NewRef(s_empty);
    f[F_MESSAGE] = Py_NewRef(s_empty);
    f[F_ATTRS] = PyDict_New();
    f[F_EVENTS] = PyList_New(0);
    f[F_LINKS] = PyList_New(0);
    if (f[F_ATTRS] == NULL || f[F_EVENTS] == NULL || f[F_LINKS] == NULL)
        goto done;
    while (p < end) {
        if (read_tag(&p, end, &tag) < 0)
            goto done;
        switch (tag) {
        case 0x4A: /* attributes: by far the most frequent field */
            if (read_len(&p, end, &s, &e) < 0 || key_value_into(s, e, f[F_ATTRS], 4) < 0)
                goto done;
            break;
        case 0x0A:
            if (read_len(&p, end, &trace_s, &trace_e) < 0)
                goto done;
            break;
        case 0x12:
            if (read_len(&p, end, &id_s, &id_e) < 0)
                goto done;
            break;
        case 0x1A:
            if (read_len(&p, end, &s, &e) < 0 || set(&f[F_STATE], utf8(s, e)) < 0)
                goto done;
            break;
        case 0x22:
            if (read_len(&p, end, &parent_s, &parent_e) < 0)
                goto done;
            break;
        case 0x2A:
            if (read_len(&p, end, &s, &e) < 0 || set(&f[F_NAME], utf8(s, e)) < 0)
                goto done;
            break;
        case 0x30:
            if (read_varint(&p, end, &kind) < 0)
                goto done;
            break;
        case 0x39:
            if (read_fixed(&p, end, 8, &start_ns) < 0)
                goto done;
            break;
        case 0x41:
            if (read_fixed(&p, end, 8, &end_ns) < 0)
                goto done;
            break;
        case 0x50:
        case 0x60:
        case 0x70:
            if (read_varint(&p, end, &v) < 0)
                goto done;
            dropped[(tag >> 4) - 5] = v & 0xFFFFFFFFu;
            break;
        case 0x5A:
        case 0x6A: {
            if (read_len(&p, end, &s, &e) < 0)
                goto done;
            PyObject *item = tag == 0x5A ? event_record(s, e) : link_record(s, e);
            if (item == NULL)
                goto done;
            int failed = PyList_Append(f[tag == 0x5A ? F_EVENTS : F_LINKS], item);
            Py_DECREF(item);
            if (failed < 0)
                goto done;
            break;
        }
        case 0x7A: /* status: merged if given twice */
            if (read_len(&p, end, &s, &e) < 0)
                goto done;
            while (s < e) {
                if (read_tag(&s, e, &tag) < 0)
                    goto done;
                if (tag == 0x12) {
                    ptr ms, me;
                    if (read_len(&s, e, &ms, &me) < 0 || set(&f[F_MESSAGE], utf8(ms, me)) < 0)
                        goto done;
                }
                else if (tag == 0x18) {
                    if (read_varint(&s, e, &code) < 0)
                        goto done;
                }
                else if (skip_field(&s, e, tag, 4) < 0) /* in the Status */
                    goto done;
            }
            break;
        case 0x85: /* flags (field 16), fixed32 */
            if (read_fixed(&p, end, 4, &flags) < 0)
                goto done;
            break;
        default:
            if (skip_field(&p, end, tag, 3) < 0)
                goto done;
        }
    }
    f[F_TRACE] = span_id_hex(trace_s, trace_e, 16, "trace_id", &bad);
    if (f[F_TRACE] != NULL)
        f[F_SPAN] = span_id_hex(id_s, id_e, 8, "span_id", &bad);
    if (f[F_SPAN] != NULL)
        f[F_PARENT] = parent_e == parent_s
                          ? Py_NewRef(Py_None)
                          : span_id_hex(parent_s, parent_e, 8, "parent_span_id", &bad);
    if (f[F_PARENT] == NULL) {
        if (bad == NULL) /* an exception, not a bad id */
            goto done;
        PyObject *problem = PyUnicode_FromFormat("span %R: %U", f[F_NAME], bad);
        rc = problem == NULL ? -1 : PyList_Append(problems, problem);
        Py_XDECREF(problem);
        goto done;
    }
    f[F_KIND] = PyLong_FromLong(as_int32(kind));
    f[F_START] = PyLong_FromUnsignedLongLong(start_ns);
    f[F_END] = PyLong_FromUnsignedLongLong(end_ns);
    f[F_CODE] = PyLong_FromLong(as_int32(code));
    f[F_FLAGS] = PyLong_FromUnsignedLongLong(flags);
    f[F_DROPPED] = PyDict_New();
    f[F_RESOURCE] = Py_NewRef(resource);
    f[F_SCOPE] = Py_NewRef(scope);
    for (int k = 0; k < N_FIELDS; k++)
        if (f[k] == NULL)
            goto done;
    static const char *dropped_names[3] = {"attributes", "events", "links"};
    for (int k = 0; k < 3; k++) {
        if (dropped[k] == 0)
            continue;
        PyObject *n = PyLong_FromUnsignedLongLong(dropped[k]);
        int failed = n == NULL || PyDict_SetItemString(f[F_DROPPED], dropped_names[k], n) < 0;
        Py_XDECREF(n);
        if (failed)
            goto done;
    }
    PyObject *record = PyObject_Vectorcall(span_type, f, N_FIELDS, NULL);
    if (record != NULL) {
        rc = PyList_Append(spans, record);
        Py_DECREF(record);
    }
done:
    for (int k = 0; k < N_FIELDS; k++)
        Py_XDECREF(f[k]);
    Py_XDECREF(bad);
    return rc;
}

/* A ScopeSpans [p, end) (depth 2). The scope may come after the spans on the wire, so it is read first. */
static int scope_spans(ptr p, ptr end, PyObject *resource, PyObject *span_type, PyObject *spans,
                       PyObject *problems)
{
    ptr q = p, s, e;
    uint64_t tag;
    int rc = -1;
    PyObject *scope = Py_BuildValue("{OOOO}", s_name, s_empty, s_version, s_empty);
    if (scope == NULL)
        return -1;
    while (q < end) {
        if (read_tag(&q, end, &tag) < 0)
            goto done;
        if (tag == 0x0A) {
            if (read_len(&q, end, &s, &e) < 0 || scope_into(s, e, scope) < 0)
                goto done;
        }
        else if (tag == 0x1A) { /* schema_url */
            if (check_utf8(&q, end) < 0)
                goto done;
        }
        else if (skip_field(&q, end, tag, 2) < 0)
            goto done;
    }
    while (p < end) { /* the second pass: the layout is known to be sound */
        if (read_tag(&p, end, &tag) < 0)
            goto done;
        if (tag == 0x12) {
            if (read_len(&p, end, &s, &e) < 0 ||
                span(s, e, resource, scope, span_type, spans, problems) < 0)
                goto done;
        }
        else if (skip_field(&p, end, tag, 2) < 0)
            goto done;
    }
    rc = 0;
done:
    Py_DECREF(scope);
    return rc;
}

/* A ResourceSpans [p, end) (depth 1). */
static int resource_spans(ptr p, ptr end, PyObject *span_type, PyObject *spans,
                          PyObject *problems)
{
    ptr q = p, s, e;
    uint64_t tag;
    int rc = -1;
    PyObject *resource = PyDict_New();
    if (resource == NULL)
        return -1;
    while (q < end) { /* the resource first: it may come after its spans */
        if (read_tag(&q, end, &tag) < 0)
            goto done;
        if (tag == 0x0A) {
            if (read_len(&q, end, &s, &e) < 0 || resource_into(s, e, resource) < 0)
                goto done;
        }
        else if (tag == 0x1A) { /* schema_url */
            if (check_utf8(&q, end) < 0)
                goto done;
        }
        else if (skip_field(&q, end, tag, 1) < 0)
            goto done;
    }
    while (p < end) {
        if (read_tag(&p, end, &tag) < 0)
            goto done;
        if (tag == 0x12) {
            if (read_len(&p, end, &s, &e) < 0 ||
                scope_spans(s, e, resource, span_type, spans, problems) < 0)
                goto done;
        }
        else if (skip_field(&p, end, tag, 1) < 0)
            goto done;
    }
    rc = 0;
done:
    Py_DECREF(resource);
    return rc;
}

static PyObject *decode_trace_request(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer body;
    PyObject *span_type, *spans = NULL, *problems = NULL, *out = NULL;
    if (!PyArg_ParseTuple(args, "y*O:decode_trace_request", &body, &span_type))
        return NULL;
    ptr p = body.buf, end = p + body.len, s, e;
    uint64_t tag;
    spans = PyList_New(0);
    problems = PyList_New(0);
    if (spans == NULL || problems == NULL)
        goto done;
    while (p < end) {
        if (read_tag(&p, end, &tag) < 0)
            goto done;
        if (tag == 0x0A) {
            if (read_len(&p, end, &s, &e) < 0 ||
                resource_spans(s, e, span_type, spans, problems) < 0)
                goto done;
        }
        else if (skip_field(&p, end, tag, 0) < 0)
            goto done;
    }
    out = PyTuple_Pack(2, spans, problems);
done:
    Py_XDECREF(spans);
    Py_XDECREF(problems);
    PyBuffer_Release(&body);
    return out;
}

/* ---- JSON spelling ----------------------------------------------------------------------- */

/* The end of the JSON string whose content starts at in[i]: the index of its closing quote (a
 * quote with an even number of backslashes right before it), or n if it is not closed. Quotes
 * are found with memchr: prompt text is most of the bytes and is skipped in bulk. */
static Py_ssize_t string_end(const uint8_t *in, Py_ssize_t i, Py_ssize_t n)
{
    for (;;) {
        const uint8_t *q = memchr(in + i, '"', (size_t)(n - i));
        if (q == NULL)
            return n;
        Py_ssize_t at = q - in, back = at;
        while (back > i && in[back - 1] == '\\')
            back--;
        if ((at - back) % 2 == 0)
            return at;
        i = at + 1;
    }
}

/* Copy in[0..n) to out (if not NULL) with a space after every ',' and ':' outside strings;
 * returns the length of the result. */
static Py_ssize_t spaced_into(const uint8_t *in, Py_ssize_t n, uint8_t *out)
{
    Py_ssize_t i = 0, written = 0;
    while (i < n) {
        uint8_t c = in[i++];
        if (out != NULL)
            out[written] = c;
        written++;
        if (c == ',' || c == ':') {
            if (out != NULL)
                out[written] = ' ';
            written++;
        }
        else if (c == '"') {
            Py_ssize_t end = string_end(in, i, n);
            Py_ssize_t stop = end < n ? end + 1 : n; /* the content and its closing quote */
            if (out != NULL)
                memcpy(out + written, in + i, (size_t)(stop - i));
            written += stop - i;
            i = stop;
        }
    }
    return written;
}

static PyObject *json_spaced(PyObject *Py_UNUSED(module), PyObject *text)
{
    if (!PyUnicode_Check(text) || !PyUnicode_IS_ASCII(text)) {
        PyErr_SetString(PyExc_TypeError, "json_spaced takes an ASCII str");
        return NULL;
    }
    const uint8_t *in = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject *out = PyUnicode_New(spaced_into(in, n, NULL), 127);
    if (out != NULL)
        spaced_into(in, n, PyUnicode_1BYTE_DATA(out));
    return out;
}

static PyMethodDef methods[] = {
    {"decode_trace_request", decode_trace_request, METH_VARARGS,
     "decode_trace_request(body, span_type) -> (spans, problems)\n\n"
     "The spans of a protobuf ExportTraceServiceRequest as span_type(...) records, and a message\n"
     "per span whose ids cannot be used. Raises ValueError for a malformed body."},
    {"json_spaced", json_spaced, METH_O,
     "json_spaced(compact) -> str\n\n"
     "Compact JSON text (ASCII) with a space after every ',' and ':' outside strings: the\n"
     "spelling of Python's json.dumps. goldloop.domain.otel_dedupe.spaced in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "goldloop._otlp_wire",
    "OTLP trace requests decoded from the protobuf wire format.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__otlp_wire(void)
{
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&s_time_unix_nano, "time_unix_nano"}, {&s_name, "name"},
        {&s_attributes, "attributes"},         {&s_trace_id, "trace_id"},
        {&s_span_id, "span_id"},               {&s_trace_state, "trace_state"},
        {&s_version, "version"},               {&s_empty, ""},
    };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        *names[k].slot = PyUnicode_InternFromString(names[k].text);
        if (*names[k].slot == NULL)
            return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "MAX_DEPTH", MAX_DEPTH) < 0)
        Py_CLEAR(m);
    return m;
}

package org.trackpose.bridge;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small JSON reader and writer, enough for the bridge protocol (job.json, shapes.json, event lines).
 *
 * <p>Reading maps JSON to plain Java values: objects to {@code LinkedHashMap<String, Object>} (key order kept),
 * arrays to {@code ArrayList<Object>}, strings to {@code String}, integral numbers that fit to {@code Long}, other
 * numbers to {@code Double}, {@code true/false} to {@code Boolean}, {@code null} to {@code null}.
 *
 * <p>Writing accepts those types plus any {@link Map} (keys written with {@code toString()}), {@link Collection},
 * Java arrays (primitive or not), {@link Number} and {@link CharSequence}. Non-finite numbers are rejected since
 * JSON cannot represent them.
 */
public final class Json {

    private Json() {
    }

    /** Thrown for text that is not valid JSON, or a value that cannot be written as JSON. */
    public static final class JsonException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;

        JsonException(String message) {
            super(message);
        }
    }

    // ------------------------------------------------------------------ reading

    /**
     * Parses one JSON value; the whole text must be that value (surrounding white space allowed).
     *
     * @throws JsonException naming the position of the first error
     */
    public static Object parse(CharSequence text) {
        Reader r = new Reader(text);
        r.skipWhitespace();
        Object value = r.readValue(0);
        r.skipWhitespace();
        if (r.pos < text.length()) {
            throw r.error("unexpected text after the JSON value");
        }
        return value;
    }

    /** Parses a JSON object; anything else (array, number, ...) is an error. */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> parseObject(CharSequence text) {
        Object value = parse(text);
        if (!(value instanceof Map)) {
            throw new JsonException("expected a JSON object, got " + typeName(value));
        }
        return (Map<String, Object>) value;
    }

    static String typeName(Object value) {
        if (value == null) {
            return "null";
        }
        if (value instanceof Map) {
            return "an object";
        }
        if (value instanceof List) {
            return "an array";
        }
        if (value instanceof String) {
            return "a string";
        }
        if (value instanceof Number) {
            return "a number";
        }
        if (value instanceof Boolean) {
            return "a boolean";
        }
        return value.getClass().getSimpleName();
    }

    private static final int MAX_DEPTH = 512;

    private static final class Reader {
        private final CharSequence s;
        private int pos;

        Reader(CharSequence s) {
            this.s = s;
        }

        JsonException error(String what) {
            return new JsonException("invalid JSON at character " + pos + ": " + what);
        }

        void skipWhitespace() {
            while (pos < s.length()) {
                char c = s.charAt(pos);
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                    pos++;
                } else {
                    break;
                }
            }
        }

        Object readValue(int depth) {
            if (depth > MAX_DEPTH) {
                throw error("nested too deeply");
            }
            if (pos >= s.length()) {
                throw error("unexpected end of text");
            }
            char c = s.charAt(pos);
            switch (c) {
                case '{':
                    return readObject(depth);
                case '[':
                    return readArray(depth);
                case '"':
                    return readString();
                case 't':
                    expectWord("true");
                    return Boolean.TRUE;
                case 'f':
                    expectWord("false");
                    return Boolean.FALSE;
                case 'n':
                    expectWord("null");
                    return null;
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        return readNumber();
                    }
                    throw error("unexpected character '" + c + "'");
            }
        }

        void expectWord(String word) {
            if (pos + word.length() > s.length() || !word.contentEquals(s.subSequence(pos, pos + word.length()))) {
                throw error("expected '" + word + "'");
            }
            pos += word.length();
        }

        Map<String, Object> readObject(int depth) {
            Map<String, Object> map = new LinkedHashMap<>();
            pos++; // '{'
            skipWhitespace();
            if (pos < s.length() && s.charAt(pos) == '}') {
                pos++;
                return map;
            }
            while (true) {
                skipWhitespace();
                if (pos >= s.length() || s.charAt(pos) != '"') {
                    throw error("expected a string key");
                }
                String key = readString();
                skipWhitespace();
                if (pos >= s.length() || s.charAt(pos) != ':') {
                    throw error("expected ':' after key \"" + key + "\"");
                }
                pos++;
                skipWhitespace();
                if (map.containsKey(key)) {
                    throw error("duplicate key \"" + key + "\"");
                }
                map.put(key, readValue(depth + 1));
                skipWhitespace();
                if (pos >= s.length()) {
                    throw error("unterminated object");
                }
                char c = s.charAt(pos++);
                if (c == '}') {
                    return map;
                }
                if (c != ',') {
                    pos--;
                    throw error("expected ',' or '}' in object");
                }
            }
        }

        List<Object> readArray(int depth) {
            List<Object> list = new ArrayList<>();
            pos++; // '['
            skipWhitespace();
            if (pos < s.length() && s.charAt(pos) == ']') {
                pos++;
                return list;
            }
            while (true) {
                skipWhitespace();
                list.add(readValue(depth + 1));
                skipWhitespace();
                if (pos >= s.length()) {
                    throw error("unterminated array");
                }
                char c = s.charAt(pos++);
                if (c == ']') {
                    return list;
                }
                if (c != ',') {
                    pos--;
                    throw error("expected ',' or ']' in array");
                }
            }
        }

        String readString() {
            pos++; // opening quote
            StringBuilder sb = new StringBuilder();
            while (true) {
                if (pos >= s.length()) {
                    throw error("unterminated string");
                }
                char c = s.charAt(pos++);
                if (c == '"') {
                    return sb.toString();
                }
                if (c < 0x20) {
                    pos--;
                    throw error("control character in string (must be escaped)");
                }
                if (c != '\\') {
                    sb.append(c);
                    continue;
                }
                if (pos >= s.length()) {
                    throw error("unterminated escape");
                }
                char e = s.charAt(pos++);
                switch (e) {
                    case '"':
                        sb.append('"');
                        break;
                    case '\\':
                        sb.append('\\');
                        break;
                    case '/':
                        sb.append('/');
                        break;
                    case 'b':
                        sb.append('\b');
                        break;
                    case 'f':
                        sb.append('\f');
                        break;
                    case 'n':
                        sb.append('\n');
                        break;
                    case 'r':
                        sb.append('\r');
                        break;
                    case 't':
                        sb.append('\t');
                        break;
                    case 'u':
                        sb.append(readHex4());
                        break;
                    default:
                        pos--;
                        throw error("invalid escape '\\" + e + "'");
                }
            }
        }

        char readHex4() {
            if (pos + 4 > s.length()) {
                throw error("truncated \\u escape");
            }
            int v = 0;
            for (int i = 0; i < 4; i++) {
                int d = Character.digit(s.charAt(pos + i), 16);
                if (d < 0) {
                    throw error("invalid \\u escape");
                }
                v = v * 16 + d;
            }
            pos += 4;
            // Surrogate pairs arrive as two escapes and are kept as two chars, which is what Java strings hold.
            return (char) v;
        }

        Number readNumber() {
            int start = pos;
            boolean integral = true;
            if (s.charAt(pos) == '-') {
                pos++;
            }
            if (pos >= s.length()) {
                throw error("truncated number");
            }
            if (s.charAt(pos) == '0') {
                pos++;
            } else if (s.charAt(pos) >= '1' && s.charAt(pos) <= '9') {
                while (pos < s.length() && Character.isDigit(s.charAt(pos)) && s.charAt(pos) < 128) {
                    pos++;
                }
            } else {
                throw error("invalid number");
            }
            if (pos < s.length() && s.charAt(pos) == '.') {
                integral = false;
                pos++;
                int digits = skipDigits();
                if (digits == 0) {
                    throw error("digits expected after '.'");
                }
            }
            if (pos < s.length() && (s.charAt(pos) == 'e' || s.charAt(pos) == 'E')) {
                integral = false;
                pos++;
                if (pos < s.length() && (s.charAt(pos) == '+' || s.charAt(pos) == '-')) {
                    pos++;
                }
                if (skipDigits() == 0) {
                    throw error("digits expected in exponent");
                }
            }
            String text = s.subSequence(start, pos).toString();
            if (integral) {
                try {
                    return Long.parseLong(text);
                } catch (NumberFormatException tooBig) {
                    return Double.parseDouble(text);
                }
            }
            return Double.parseDouble(text);
        }

        int skipDigits() {
            int n = 0;
            while (pos < s.length() && s.charAt(pos) >= '0' && s.charAt(pos) <= '9') {
                pos++;
                n++;
            }
            return n;
        }
    }

    // ------------------------------------------------------------------ writing

    /** Writes a value as compact JSON on one line (as event lines and requests need). */
    public static String write(Object value) {
        StringBuilder sb = new StringBuilder();
        writeValue(sb, value, -1, 0);
        return sb.toString();
    }

    /** Writes a value as JSON indented by two spaces per level (for files people may read). */
    public static String writePretty(Object value) {
        StringBuilder sb = new StringBuilder();
        writeValue(sb, value, 2, 0);
        return sb.toString();
    }

    private static void newline(StringBuilder sb, int indent, int level) {
        if (indent < 0) {
            return;
        }
        sb.append('\n');
        for (int i = 0; i < indent * level; i++) {
            sb.append(' ');
        }
    }

    private static void writeValue(StringBuilder sb, Object value, int indent, int level) {
        if (level > MAX_DEPTH) {
            throw new JsonException("value nested too deeply (a cycle?)");
        }
        if (value == null) {
            sb.append("null");
        } else if (value instanceof Boolean) {
            sb.append(value.toString());
        } else if (value instanceof Number) {
            writeNumber(sb, (Number) value);
        } else if (value instanceof CharSequence || value instanceof Character || value instanceof Enum) {
            writeString(sb, value.toString());
        } else if (value instanceof Map) {
            Map<?, ?> map = (Map<?, ?>) value;
            if (map.isEmpty()) {
                sb.append("{}");
                return;
            }
            sb.append('{');
            Iterator<? extends Map.Entry<?, ?>> it = map.entrySet().iterator();
            while (it.hasNext()) {
                Map.Entry<?, ?> e = it.next();
                if (e.getKey() == null) {
                    throw new JsonException("null key in a map");
                }
                newline(sb, indent, level + 1);
                writeString(sb, e.getKey().toString());
                sb.append(indent < 0 ? ":" : ": ");
                writeValue(sb, e.getValue(), indent, level + 1);
                if (it.hasNext()) {
                    sb.append(',');
                }
            }
            newline(sb, indent, level);
            sb.append('}');
        } else if (value instanceof Collection) {
            writeArray(sb, new ArrayList<Object>((Collection<?>) value), indent, level);
        } else if (value.getClass().isArray()) {
            int n = java.lang.reflect.Array.getLength(value);
            List<Object> items = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                items.add(java.lang.reflect.Array.get(value, i));
            }
            writeArray(sb, items, indent, level);
        } else {
            throw new JsonException("cannot write a " + value.getClass().getName() + " as JSON");
        }
    }

    private static void writeArray(StringBuilder sb, List<Object> items, int indent, int level) {
        if (items.isEmpty()) {
            sb.append("[]");
            return;
        }
        // Arrays of scalars stay on one line even when pretty-printing: polygons and frame lists read better.
        boolean flat = indent < 0 || items.stream().noneMatch(v -> v instanceof Map || v instanceof Collection
                || (v != null && v.getClass().isArray()));
        sb.append('[');
        for (int i = 0; i < items.size(); i++) {
            if (!flat) {
                newline(sb, indent, level + 1);
            }
            writeValue(sb, items.get(i), indent, level + 1);
            if (i + 1 < items.size()) {
                sb.append(flat && indent >= 0 ? ", " : ",");
            }
        }
        if (!flat) {
            newline(sb, indent, level);
        }
        sb.append(']');
    }

    private static void writeNumber(StringBuilder sb, Number n) {
        if (n instanceof Double || n instanceof Float) {
            double d = n.doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                throw new JsonException("JSON cannot hold the number " + d);
            }
            if (d == Math.rint(d) && Math.abs(d) < 1e15) {
                // Keep a decimal point so that the reader on the other side sees a float.
                sb.append(d == 0 && 1 / d < 0 ? "-0" : Long.toString((long) d)).append(".0");
            } else {
                sb.append(Double.toString(d));
            }
        } else {
            sb.append(n.toString());
        }
    }

    private static void writeString(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"':
                    sb.append("\\\"");
                    break;
                case '\\':
                    sb.append("\\\\");
                    break;
                case '\n':
                    sb.append("\\n");
                    break;
                case '\r':
                    sb.append("\\r");
                    break;
                case '\t':
                    sb.append("\\t");
                    break;
                case '\b':
                    sb.append("\\b");
                    break;
                case '\f':
                    sb.append("\\f");
                    break;
                default:
                    if (c < 0x20 || c == '\u2028' || c == '\u2029') {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
            }
        }
        sb.append('"');
    }

    // ------------------------------------------------------------------ typed access helpers

    /** Reads {@code map[key]} as a number, or throws a message that names the key and what was found. */
    static double number(Map<String, Object> map, String key, String where) {
        Object v = map.get(key);
        if (!(v instanceof Number)) {
            throw new JsonException(where + ": \"" + key + "\" must be a number, got " + describe(v, map, key));
        }
        return ((Number) v).doubleValue();
    }

    static long integer(Map<String, Object> map, String key, String where) {
        double d = number(map, key, where);
        if (d != Math.rint(d)) {
            throw new JsonException(where + ": \"" + key + "\" must be an integer, got " + d);
        }
        return (long) d;
    }

    @SuppressWarnings("unchecked")
    static List<Object> array(Map<String, Object> map, String key, String where) {
        Object v = map.get(key);
        if (!(v instanceof List)) {
            throw new JsonException(where + ": \"" + key + "\" must be an array, got " + describe(v, map, key));
        }
        return (List<Object>) v;
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> object(Object v, String where) {
        if (!(v instanceof Map)) {
            throw new JsonException(where + " must be an object, got " + typeName(v));
        }
        return (Map<String, Object>) v;
    }

    private static String describe(Object v, Map<String, Object> map, String key) {
        if (v == null && !map.containsKey(key)) {
            return "nothing (missing)";
        }
        return typeName(v) + (v instanceof String ? " \"" + v + "\"" : "");
    }
}

package org.trackpose.bridge;

import com.google.gson.ToNumberPolicy;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import com.google.gson.stream.JsonWriter;
import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The bridge protocol's JSON (job.json, shapes.json, event lines), read and written with Gson's strict streaming
 * reader and writer.
 *
 * <p>Reading maps JSON to plain Java values: objects to {@code LinkedHashMap<String, Object>} (key order kept),
 * arrays to {@code ArrayList<Object>}, strings to {@code String}, integral numbers that fit to {@code Long}, other
 * numbers to {@code Double} (Gson's {@link ToNumberPolicy#LONG_OR_DOUBLE}), {@code true/false} to {@code Boolean},
 * {@code null} to {@code null}. On top of Gson's strict mode it rejects duplicate keys, unescaped control characters
 * in strings and nesting deeper than 512 levels, and every error names its character offset.
 *
 * <p>Writing accepts those types plus any {@link Map} (keys written with {@code toString()}), {@link Collection},
 * Java arrays (primitive or not), {@link Number} and {@link CharSequence}. Non-finite numbers are rejected since
 * JSON cannot represent them. Doubles always keep a decimal point ({@code 2.0}, {@code 10000000.0}) so that the
 * reader on the other side sees a float; the pretty form keeps arrays of scalars on one line.
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

    private static final int MAX_DEPTH = 512;

    // ------------------------------------------------------------------ reading

    /**
     * Parses one JSON value; the whole text must be that value (surrounding white space allowed).
     *
     * @throws JsonException naming the position of the first error
     */
    public static Object parse(CharSequence text) {
        String s = text.toString();
        checkControlCharacters(s);
        JsonReader reader = new JsonReader(new StringReader(s));
        reader.setLenient(false);
        try {
            Object value = readValue(reader, s, 0);
            boolean more;
            try {
                more = reader.peek() != JsonToken.END_DOCUMENT;
            } catch (IOException e) {
                more = true; // strict Gson refuses a second value with an exception
            }
            if (more) {
                throw error(s, reader.toString(), "unexpected text after the JSON value");
            }
            return value;
        } catch (JsonException e) {
            throw e;
        } catch (IOException | IllegalStateException | NumberFormatException e) {
            // Gson: MalformedJsonException / EOFException (IOException), wrong token (IllegalStateException).
            throw error(s, String.valueOf(e.getMessage()), null);
        }
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

    private static Object readValue(JsonReader reader, String s, int depth) throws IOException {
        if (depth > MAX_DEPTH) {
            throw error(s, reader.toString(), "nested too deeply");
        }
        switch (reader.peek()) {
            case BEGIN_OBJECT: {
                Map<String, Object> map = new LinkedHashMap<>();
                reader.beginObject();
                while (reader.hasNext()) {
                    String key = reader.nextName();
                    if (map.containsKey(key)) {
                        throw error(s, reader.toString(), "duplicate key \"" + key + "\"");
                    }
                    map.put(key, readValue(reader, s, depth + 1));
                }
                reader.endObject();
                return map;
            }
            case BEGIN_ARRAY: {
                List<Object> list = new ArrayList<>();
                reader.beginArray();
                while (reader.hasNext()) {
                    list.add(readValue(reader, s, depth + 1));
                }
                reader.endArray();
                return list;
            }
            case STRING:
                return reader.nextString();
            case NUMBER:
                return ToNumberPolicy.LONG_OR_DOUBLE.readNumber(reader);
            case BOOLEAN:
                return reader.nextBoolean();
            case NULL:
                reader.nextNull();
                return null;
            default:
                throw error(s, reader.toString(), "unexpected " + reader.peek());
        }
    }

    /**
     * Gson's reader (2.10) takes raw control characters inside strings and skips a leading byte order mark; JSON
     * allows neither, so they are refused here, with their offset.
     */
    private static void checkControlCharacters(String s) {
        if (!s.isEmpty() && s.charAt(0) == '\ufeff') {
            throw new JsonException("invalid JSON at character 0: unexpected character '\ufeff'");
        }
        boolean inString = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (inString) {
                if (c == '\\') {
                    i++;
                } else if (c == '"') {
                    inString = false;
                } else if (c < 0x20) {
                    throw new JsonException("invalid JSON at character " + i
                            + ": control character in string (must be escaped)");
                }
            } else if (c == '"') {
                inString = true;
            }
        }
    }

    private static final Pattern GSON_LOCATION = Pattern.compile("(?s)(.*?)\\s*at line (\\d+) column (\\d+)(?: path .*)?");

    /** Turns Gson's "... at line L column C path P" into our "invalid JSON at character N: ...". */
    private static JsonException error(String s, String gsonText, String what) {
        Matcher m = GSON_LOCATION.matcher(gsonText);
        int offset = s.length();
        String reason = gsonText;
        if (m.matches()) {
            reason = m.group(1).trim();
            offset = offsetOf(s, Integer.parseInt(m.group(2)), Integer.parseInt(m.group(3)));
        }
        if (reason.startsWith("Use JsonReader.setLenient(true)") || reason.isEmpty()) {
            // Gson's strict mode met something only its lenient mode takes (a bare word, 'quotes', a comment...).
            reason = offset < s.length() ? "unexpected character '" + s.charAt(offset) + "'" : "malformed JSON";
        } else if (reason.startsWith("End of input")) {
            reason = "unexpected end of text";
        }
        return new JsonException("invalid JSON at character " + offset + ": " + (what != null ? what : reason));
    }

    private static int offsetOf(String s, int line, int column) {
        int start = 0;
        for (int l = 1; l < line; l++) {
            int nl = s.indexOf('\n', start);
            if (nl < 0) {
                break;
            }
            start = nl + 1;
        }
        return Math.max(0, Math.min(s.length(), start + column - 1));
    }

    // ------------------------------------------------------------------ writing

    /** Writes a value as compact JSON on one line (as event lines and requests need). */
    public static String write(Object value) {
        return write(value, false);
    }

    /** Writes a value as JSON indented by two spaces per level (for files people may read). */
    public static String writePretty(Object value) {
        return write(value, true);
    }

    private static String write(Object value, boolean pretty) {
        StringWriter out = new StringWriter();
        try (JsonWriter w = newWriter(out, pretty)) {
            writeValue(w, value, pretty, 0);
        } catch (IOException e) {
            throw new IllegalStateException("writing JSON to a string failed", e);
        }
        return out.toString();
    }

    private static JsonWriter newWriter(StringWriter out, boolean pretty) {
        JsonWriter w = new JsonWriter(out);
        w.setHtmlSafe(false);
        w.setSerializeNulls(true);
        w.setLenient(false);
        if (pretty) {
            w.setIndent("  ");
        }
        return w;
    }

    private static void writeValue(JsonWriter w, Object value, boolean pretty, int level) throws IOException {
        if (level > MAX_DEPTH) {
            throw new JsonException("value nested too deeply (a cycle?)");
        }
        if (value == null) {
            w.nullValue();
        } else if (value instanceof Boolean) {
            w.value((Boolean) value);
        } else if (value instanceof Number) {
            writeNumber(w, (Number) value);
        } else if (value instanceof CharSequence || value instanceof Character || value instanceof Enum) {
            w.value(value.toString());
        } else if (value instanceof Map) {
            w.beginObject();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) value).entrySet()) {
                if (e.getKey() == null) {
                    throw new JsonException("null key in a map");
                }
                w.name(e.getKey().toString());
                writeValue(w, e.getValue(), pretty, level + 1);
            }
            w.endObject();
        } else if (value instanceof Collection) {
            writeArray(w, new ArrayList<Object>((Collection<?>) value), pretty, level);
        } else if (value.getClass().isArray()) {
            int n = java.lang.reflect.Array.getLength(value);
            List<Object> items = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                items.add(java.lang.reflect.Array.get(value, i));
            }
            writeArray(w, items, pretty, level);
        } else {
            throw new JsonException("cannot write a " + value.getClass().getName() + " as JSON");
        }
    }

    private static boolean isContainer(Object v) {
        return v instanceof Map || v instanceof Collection || (v != null && v.getClass().isArray());
    }

    private static void writeArray(JsonWriter w, List<Object> items, boolean pretty, int level) throws IOException {
        if (pretty && !items.isEmpty() && items.stream().noneMatch(Json::isContainer)) {
            // Arrays of scalars stay on one line even when pretty-printing: polygons and frame lists read better.
            StringBuilder sb = new StringBuilder("[");
            for (int i = 0; i < items.size(); i++) {
                sb.append(i == 0 ? "" : ", ").append(write(items.get(i), false));
            }
            w.jsonValue(sb.append(']').toString());
            return;
        }
        w.beginArray();
        for (Object item : items) {
            writeValue(w, item, pretty, level + 1);
        }
        w.endArray();
    }

    private static void writeNumber(JsonWriter w, Number n) throws IOException {
        if (n instanceof Double || n instanceof Float) {
            double d = n.doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                throw new JsonException("JSON cannot hold the number " + d);
            }
            if (d == Math.rint(d) && Math.abs(d) < 1e15) {
                // Keep a decimal point so that the reader on the other side sees a float (Gson would write 1.0E7).
                w.jsonValue((d == 0 && 1 / d < 0 ? "-0" : Long.toString((long) d)) + ".0");
            } else {
                w.jsonValue(Double.toString(d));
            }
        } else if (n instanceof Long || n instanceof Integer || n instanceof Short || n instanceof Byte) {
            w.value(n.longValue());
        } else {
            try {
                w.value(n);
            } catch (IllegalArgumentException e) {
                throw new JsonException("JSON cannot hold the number " + n);
            }
        }
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

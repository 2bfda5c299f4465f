package org.trackpose.bridge;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class JsonTest {

    @Test
    void parsesScalars() {
        assertEquals(Boolean.TRUE, Json.parse("true"));
        assertEquals(Boolean.FALSE, Json.parse(" false "));
        assertNull(Json.parse("null"));
        assertEquals(42L, Json.parse("42"));
        assertEquals(-7L, Json.parse("-7"));
        assertEquals(0L, Json.parse("0"));
        assertEquals(0.4, Json.parse("0.4"));
        assertEquals(-1.5e-3, Json.parse("-1.5e-3"));
        assertEquals(2e10, Json.parse("2E+10"));
        assertEquals(1e30, (Double) Json.parse("1000000000000000000000000000000"), 1e15);
        assertEquals("abc", Json.parse("\"abc\""));
    }

    @Test
    void parsesNestedObjectsInOrder() {
        Map<String, Object> m = Json.parseObject("{\"b\": [1, 2.5, {\"c\": null}], \"a\": {}, \"d\": []}");
        assertEquals(Arrays.asList("b", "a", "d"), Arrays.asList(m.keySet().toArray()));
        List<?> b = (List<?>) m.get("b");
        assertEquals(1L, b.get(0));
        assertEquals(2.5, b.get(1));
        assertTrue(((Map<?, ?>) b.get(2)).containsKey("c"));
        assertNull(((Map<?, ?>) b.get(2)).get("c"));
        assertTrue(((Map<?, ?>) m.get("a")).isEmpty());
        assertTrue(((List<?>) m.get("d")).isEmpty());
    }

    @Test
    void parsesEscapes() {
        assertEquals("a\"b\\c/d\be\ff\ng\rh\ti", Json.parse("\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\""));
        assertEquals("\u00e9\u4e2d", Json.parse("\"\\u00e9\\u4E2D\""));
        // a character outside the BMP as a surrogate pair
        assertEquals("\uD83D\uDE00", Json.parse("\"\\ud83d\\ude00\""));
        assertEquals("raw \u00fc", Json.parse("\"raw \u00fc\""));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "   ", "{", "[1, 2", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "\"abc", "01",
        "1.", ".5", "1e", "-", "+1", "tru", "nul", "[1] x", "\"a\\x\"", "\"\\u12\"", "\"line\nbreak\"",
        "{\"a\":1,\"a\":2}", "'single'", "NaN", "Infinity"})
    void rejectsInvalidText(String text) {
        Json.JsonException e = assertThrows(Json.JsonException.class, () -> Json.parse(text));
        assertTrue(e.getMessage().startsWith("invalid JSON at character"), e.getMessage());
    }

    @Test
    void errorNamesThePosition() {
        Json.JsonException e = assertThrows(Json.JsonException.class, () -> Json.parse("[1, 2, x]"));
        assertTrue(e.getMessage().contains("character 7"), e.getMessage());
    }

    @Test
    void parseObjectRejectsOtherValues() {
        assertThrows(Json.JsonException.class, () -> Json.parseObject("[1]"));
        assertThrows(Json.JsonException.class, () -> Json.parseObject("3"));
    }

    @Test
    void writesCompactJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("event", "log");
        m.put("n", 3);
        m.put("x", 0.5);
        m.put("whole", 2.0);
        m.put("ok", true);
        m.put("none", null);
        m.put("list", Arrays.asList(1, "two"));
        m.put("ints", new int[] {4, 5});
        assertEquals("{\"event\":\"log\",\"n\":3,\"x\":0.5,\"whole\":2.0,\"ok\":true,\"none\":null,"
                + "\"list\":[1,\"two\"],\"ints\":[4,5]}", Json.write(m));
    }

    @Test
    void escapesStringsWhenWriting() {
        assertEquals("\"q\\\"b\\\\n\\nt\\tc\\u0001\"", Json.write("q\"b\\n\nt\tc\u0001"));
    }

    @Test
    void doublesStayDoublesAcrossARoundTrip() {
        assertEquals(30.0, Json.parse(Json.write(30.0)));
        assertEquals(-0.0, Json.parse(Json.write(-0.0)));
        assertEquals(1e-7, Json.parse(Json.write(1e-7)));
        assertEquals(1e20, Json.parse(Json.write(1e20)));
        assertEquals(0.1 + 0.2, Json.parse(Json.write(0.1 + 0.2)));
    }

    @Test
    void refusesNonFiniteNumbersAndUnknownTypes() {
        assertThrows(Json.JsonException.class, () -> Json.write(Double.NaN));
        assertThrows(Json.JsonException.class, () -> Json.write(Double.POSITIVE_INFINITY));
        assertThrows(Json.JsonException.class, () -> Json.write(new Object()));
    }

    @Test
    void roundTripsNestedValuesPrettyAndCompact() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("version", 1L);
        m.put("frames", Arrays.asList(0L, 1L, 2L));
        Map<String, Object> inner = new LinkedHashMap<>();
        inner.put("unit", "\u00b5m \"quoted\"");
        inner.put("polygon", Arrays.asList(Arrays.asList(1.5, 2.0), Arrays.asList(3L, 4L)));
        m.put("calibration", inner);
        m.put("empty", new LinkedHashMap<>());
        assertEquals(m, Json.parse(Json.write(m)));
        String pretty = Json.writePretty(m);
        assertTrue(pretty.contains("\n  \"frames\": [0, 1, 2]"), pretty);
        assertEquals(m, Json.parse(pretty));
    }

    @Test
    void integersAreLongsAndOtherNumbersDoublesAsGsonLongOrDouble() {
        List<?> l = (List<?>) Json.parse("[3, -0, 3.0, 1e2, 9223372036854775807, 9223372036854775808]");
        assertEquals(Arrays.asList(3L, 0L, 3.0, 100.0, Long.MAX_VALUE, 9.223372036854775808e18), l);
    }

    @Test
    void errorsNameTheCharacterOffsetAcrossLines() {
        Json.JsonException e = assertThrows(Json.JsonException.class, () -> Json.parse("{\n  \"a\": 1,\n  x\n}"));
        assertTrue(e.getMessage().startsWith("invalid JSON at character 15:"), e.getMessage());
        e = assertThrows(Json.JsonException.class, () -> Json.parse("{\"a\": 1, \"a\": 2}"));
        assertTrue(e.getMessage().contains("duplicate key \"a\""), e.getMessage());
        e = assertThrows(Json.JsonException.class, () -> Json.parse("[\"ok\", \"tab\there\"]"));
        assertEquals("invalid JSON at character 11: control character in string (must be escaped)", e.getMessage());
        assertThrows(Json.JsonException.class, () -> Json.parse("\ufeff{}"));
        assertThrows(Json.JsonException.class, () -> Json.parse("1e999"));
        // Gson's lenient extras stay refused: comments, trailing separators, unquoted strings.
        assertThrows(Json.JsonException.class, () -> Json.parse("{} // comment"));
        assertThrows(Json.JsonException.class, () -> Json.parse("[1;2]"));
        assertThrows(Json.JsonException.class, () -> Json.parse("[abc]"));
        assertInstanceOf(IllegalArgumentException.class, e);
    }

    @Test
    void rejectsNestingDeeperThan512() {
        String deep = "[".repeat(600) + "]".repeat(600);
        Json.JsonException e = assertThrows(Json.JsonException.class, () -> Json.parse(deep));
        assertTrue(e.getMessage().contains("nested too deeply"), e.getMessage());
        assertEquals(1, ((List<?>) Json.parse("[".repeat(100) + "]".repeat(100))).size());
    }

    @Test
    void writesDoublesWithADecimalPointAndNoHtmlEscaping() {
        assertEquals("[10000000.0,-0.0,1.0E15,1.0E-7,0.5,5]", Json.write(new Object[] {1e7, -0.0, 1e15, 1e-7, 0.5f, 5}));
        assertEquals("\"<a href='x'>&=\"", Json.write("<a href='x'>&="));
        assertEquals("\"\\u2028\\u2029\\b\\f\"", Json.write("\u2028\u2029\b\f"));
        assertThrows(Json.JsonException.class, () -> Json.write(Collections.singletonMap(null, 1)));
        assertThrows(Json.JsonException.class, () -> Json.write(Float.NaN));
    }

    @Test
    void prettyFormIsTheJobJsonLayout() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("version", 1L);
        m.put("frames", Arrays.asList(0L, 1L));
        m.put("polygon", Arrays.asList(Arrays.asList(1.5, 2.0), Arrays.asList(3L, 4L)));
        Map<String, Object> inner = new LinkedHashMap<>();
        inner.put("unit", "\u00b5m");
        inner.put("none", null);
        inner.put("empty", new ArrayList<>());
        m.put("calibration", inner);
        m.put("empty", new LinkedHashMap<>());
        assertEquals("{\n"
                + "  \"version\": 1,\n"
                + "  \"frames\": [0, 1],\n"
                + "  \"polygon\": [\n"
                + "    [1.5, 2.0],\n"
                + "    [3, 4]\n"
                + "  ],\n"
                + "  \"calibration\": {\n"
                + "    \"unit\": \"\u00b5m\",\n"
                + "    \"none\": null,\n"
                + "    \"empty\": []\n"
                + "  },\n"
                + "  \"empty\": {}\n"
                + "}", Json.writePretty(m));
        assertEquals("[\n  {\n    \"a\": [true, null, \"s\"]\n  },\n  2\n]",
                Json.writePretty(Arrays.asList(Collections.singletonMap("a", Arrays.asList(true, null, "s")), 2)));
    }
}

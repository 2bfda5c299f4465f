package org.trackpose.bridge;

import static org.junit.jupiter.api.Assertions.*;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The Java detector's settings ({@link DetectorKeys}: keys, types, defaults, ranges) against the engine's single
 * declaration of its settings, printed by {@code python -m trackpose settings --json}:
 *
 * <pre>
 * {"settings": [{"name", "type": "float"|"int"|"bool"|"str"|"channels", "default", "min", "max", "choices",
 *                "help", "cli", "job_key", "trackmate_key", "trackmate_default"}, ...]}
 * </pre>
 *
 * <p>For every entry with a {@code trackmate_key}, DetectorKeys must declare that key with the matching type, the
 * entry's {@code trackmate_default} as its default (TrackMate's panel value: equal to {@code default} except where
 * the engine documents why, e.g. CELL_DIAMETER in physical units) and the same inclusive bounds (null = unbounded;
 * an infinite Java bound is no bound; an {@code exclusive_min} that is true cannot be matched). Every Java key must be some entry's {@code trackmate_key}, except the keys
 * listed in {@link #JAVA_SIDE}, which are the Java side's own business (how Python is found, the job folder, how
 * the model name is chosen). A {@code channels} entry maps to two Java keys: its trackmate_key (first channel) and
 * {@link DetectorKeys#KEY_OPTIONAL_CHANNEL_2} (second).
 *
 * <p>Needs the engine: {@code TRACKPOSE_PYTHON} names the python that has trackpose (tests/run sets it). Without it
 * this test fails: parity that is never checked is no parity.
 */
class SettingsParityTest {

    /** Java keys with no engine counterpart, each with the reason. */
    static final Map<String, String> JAVA_SIDE;

    static {
        Map<String, String> m = new LinkedHashMap<>();
        m.put(DetectorKeys.KEY_PYTHON_ENV_KIND, "how the Java side finds Python");
        m.put(DetectorKeys.KEY_CONDA_ENV, "how the Java side finds Python");
        m.put(DetectorKeys.KEY_PYTHON_ENV_PATH, "how the Java side finds Python");
        m.put(DetectorKeys.KEY_CONDA_EXECUTABLE, "how the Java side finds Python");
        m.put(DetectorKeys.KEY_KEEP_TEMP_FOLDER, "the Java side owns the job folder");
        m.put(DetectorKeys.KEY_CELLPOSE_MODEL_FILEPATH,
                "a custom model file: sent as the engine's model setting instead of CELLPOSE_MODEL");
        m.put(DetectorKeys.KEY_PRETRAINED_OR_CUSTOM, "chooses between CELLPOSE_MODEL and CELLPOSE_MODEL_FILEPATH");
        m.put(DetectorKeys.KEY_DO2DZ,
                "chooses 2D + Z stitching in 3D mode: the engine's stitch_threshold is IOU_THRESHOLD then, else 0");
        JAVA_SIDE = Collections.unmodifiableMap(m);
    }

    private static List<Map<String, Object>> entries;

    @BeforeAll
    static void askTheEngine() throws Exception {
        String python = System.getenv("TRACKPOSE_PYTHON");
        assertTrue(python != null && !python.trim().isEmpty(), "TRACKPOSE_PYTHON is not set: this test compares "
                + "DetectorKeys with the engine's declaration and needs the python that has trackpose installed "
                + "(tests/run sets it; by hand: TRACKPOSE_PYTHON=~/.cache/trackpose-venv/bin/python mvn -B test)");
        List<String> argv = Arrays.asList(python.trim(), "-m", "trackpose", "settings", "--json");
        Process p = new ProcessBuilder(argv).redirectInput(ProcessBuilder.Redirect.PIPE).start();
        p.getOutputStream().close();
        CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> read(p.getInputStream()));
        CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> read(p.getErrorStream()));
        if (!p.waitFor(180, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail(String.join(" ", argv) + " did not answer within 180 s");
        }
        String stdout = out.get(10, TimeUnit.SECONDS);
        String stderr = err.get(10, TimeUnit.SECONDS);
        assertEquals(0, p.exitValue(), String.join(" ", argv) + " failed; stderr:\n" + stderr);
        Map<String, Object> doc;
        try {
            doc = Json.parseObject(stdout);
        } catch (Json.JsonException e) {
            throw new AssertionError(String.join(" ", argv) + " did not print one JSON object (" + e.getMessage()
                    + "):\n" + stdout, e);
        }
        Object list = doc.get("settings");
        assertTrue(list instanceof List, "{\"settings\": [...]} expected, got " + doc.keySet());
        entries = new ArrayList<>();
        for (Object o : (List<?>) list) {
            assertTrue(o instanceof Map, "each setting is an object: " + o);
            @SuppressWarnings("unchecked")
            Map<String, Object> e = (Map<String, Object>) o;
            for (String field : new String[] {"name", "type", "default", "min", "max", "choices", "trackmate_key",
                "trackmate_default"}) {
                assertTrue(e.containsKey(field), "setting " + e.get("name") + " lacks the field " + field);
            }
            entries.add(e);
        }
        assertFalse(entries.isEmpty(), "the engine declares no settings");
    }

    private static String read(InputStream in) {
        try (InputStream s = in) {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            s.transferTo(b);
            return b.toString(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Python's type name for a Java setting's type. */
    private static String pythonType(Class<?> type) {
        if (type == Double.class) {
            return "float";
        }
        if (type == Integer.class) {
            return "int";
        }
        if (type == Boolean.class) {
            return "bool";
        }
        return "str";
    }

    /** Null for no bound (JSON null, or an infinite Java bound). */
    private static Double bound(Object b) {
        if (b == null) {
            return null;
        }
        double d = ((Number) b).doubleValue();
        return Double.isInfinite(d) ? null : d;
    }

    /** Whether a JSON value (Long, Double, Boolean, String) equals a Java default (Integer, Double, ...). */
    private static boolean same(Object json, Object java) {
        if (json instanceof Number && java instanceof Number) {
            return ((Number) json).doubleValue() == ((Number) java).doubleValue();
        }
        return java.equals(json);
    }

    private static void compare(String key, String pythonName, String type, Object expectedDefault, Object min,
            Object max, Object exclusiveMin, Object choices, List<String> problems) {
        DetectorKeys.Setting s = DetectorKeys.setting(key);
        if (s == null) {
            problems.add(pythonName + ": the engine maps it to TrackMate key " + key + ", which DetectorKeys lacks");
            return;
        }
        if (!pythonType(s.type).equals(type)) {
            problems.add(key + ": Java type " + s.type.getSimpleName() + ", engine (" + pythonName + ") " + type);
        }
        if (expectedDefault == null || !same(expectedDefault, s.defaultValue)) {
            problems.add(key + ": Java default " + s.defaultValue + ", engine (" + pythonName + ") "
                    + expectedDefault);
        }
        if (Boolean.TRUE.equals(exclusiveMin)) {
            problems.add(key + ": the engine's minimum for " + pythonName + " is exclusive; DetectorKeys' bounds are "
                    + "inclusive");
        }
        Double jmin = bound(s.min);
        Double jmax = bound(s.max);
        Double pmin = bound(min);
        Double pmax = bound(max);
        if (!java.util.Objects.equals(jmin, pmin) || !java.util.Objects.equals(jmax, pmax)) {
            problems.add(key + ": Java range [" + jmin + ", " + jmax + "], engine (" + pythonName + ") [" + pmin
                    + ", " + pmax + "] (null = unbounded)");
        }
        if (s.allowed != null && choices instanceof List
                && !new LinkedHashSet<>(s.allowed).equals(new LinkedHashSet<>((List<?>) choices))) {
            problems.add(key + ": Java choices " + s.allowed + ", engine (" + pythonName + ") " + choices);
        }
    }

    @Test
    void everyTrackMateKeyOfTheEngineHasTheSameTypeDefaultAndRangeInJava() {
        List<String> problems = new ArrayList<>();
        for (Map<String, Object> e : entries) {
            Object key = e.get("trackmate_key");
            if (key == null) {
                continue;
            }
            String name = String.valueOf(e.get("name"));
            String type = String.valueOf(e.get("type"));
            Object def = e.get("trackmate_default") != null ? e.get("trackmate_default") : e.get("default");
            if ("channels".equals(type)) {
                if (!(def instanceof List) || ((List<?>) def).size() != 2) {
                    problems.add(name + ": a channels default is a list of two channels, got " + def);
                    continue;
                }
                List<?> pair = (List<?>) def;
                compare(key.toString(), name, "int", pair.get(0), e.get("min"), e.get("max"), e.get("exclusive_min"),
                        null, problems);
                compare(DetectorKeys.KEY_OPTIONAL_CHANNEL_2, name, "int", pair.get(1), e.get("min"), e.get("max"),
                        e.get("exclusive_min"), null, problems);
            } else {
                compare(key.toString(), name, type, def, e.get("min"), e.get("max"), e.get("exclusive_min"),
                        e.get("choices"), problems);
            }
        }
        assertTrue(problems.isEmpty(), "DetectorKeys and the engine's settings declaration disagree:\n  "
                + String.join("\n  ", problems));
    }

    @Test
    void everyJavaEngineKeyIsDeclaredByTheEngine() {
        Set<String> mapped = new LinkedHashSet<>();
        for (Map<String, Object> e : entries) {
            Object key = e.get("trackmate_key");
            if (key != null) {
                if (!mapped.add(key.toString())) {
                    fail("two engine settings map to TrackMate key " + key);
                }
                if ("channels".equals(e.get("type"))) {
                    mapped.add(DetectorKeys.KEY_OPTIONAL_CHANNEL_2);
                }
            }
        }
        List<String> missing = new ArrayList<>();
        for (String key : DetectorKeys.keys()) {
            if (!JAVA_SIDE.containsKey(key) && !mapped.contains(key)) {
                missing.add(key);
            }
        }
        assertTrue(missing.isEmpty(), "DetectorKeys has engine settings that the engine does not declare (no entry "
                + "with that trackmate_key): " + missing + "; Java-side keys are " + JAVA_SIDE.keySet());
        for (String key : JAVA_SIDE.keySet()) {
            assertNotNull(DetectorKeys.setting(key), "Java-side key " + key + " no longer in DetectorKeys");
            assertFalse(mapped.contains(key), key + " is listed as Java-side but the engine declares it");
        }
    }
}

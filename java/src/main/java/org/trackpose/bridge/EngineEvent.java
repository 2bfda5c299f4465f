package org.trackpose.bridge;

import java.util.Collections;
import java.util.Map;

/**
 * One event line from the engine's stdout (bridge protocol v1): {@code progress}, {@code log}, {@code error},
 * {@code done}, or another event name the engine may add ({@link Type#OTHER}).
 */
public final class EngineEvent {

    public enum Type {
        PROGRESS, LOG, ERROR, DONE, OTHER
    }

    private final Type type;
    private final String name;
    private final Map<String, Object> fields;

    private EngineEvent(Type type, String name, Map<String, Object> fields) {
        this.type = type;
        this.name = name;
        this.fields = Collections.unmodifiableMap(fields);
    }

    /**
     * Parses one stdout line; null when it is not an event (not JSON, not an object, no string "event"): such
     * lines are stray output from a library, which the bridge logs and otherwise ignores.
     */
    public static EngineEvent parse(String line) {
        if (line == null) {
            return null;
        }
        String t = line.trim();
        if (!t.startsWith("{") || !t.endsWith("}")) {
            return null;
        }
        Map<String, Object> fields;
        try {
            fields = Json.parseObject(t);
        } catch (Json.JsonException e) {
            return null;
        }
        Object name = fields.get("event");
        if (!(name instanceof String)) {
            return null;
        }
        Type type;
        switch ((String) name) {
            case "progress":
                type = Type.PROGRESS;
                break;
            case "log":
                type = Type.LOG;
                break;
            case "error":
                type = Type.ERROR;
                break;
            case "done":
                type = Type.DONE;
                break;
            default:
                type = Type.OTHER;
        }
        return new EngineEvent(type, (String) name, fields);
    }

    public Type type() {
        return type;
    }

    /** The event name as sent. */
    public String name() {
        return name;
    }

    public Map<String, Object> fields() {
        return fields;
    }

    /** An integer field, or {@code otherwise} when absent or not a number. */
    public int intField(String key, int otherwise) {
        Object v = fields.get(key);
        return v instanceof Number ? ((Number) v).intValue() : otherwise;
    }

    /** A field as text ("" when absent; numbers and others by toString). */
    public String textField(String key) {
        Object v = fields.get(key);
        return v == null ? "" : v.toString();
    }

    public String message() {
        return textField("message");
    }

    @Override
    public String toString() {
        return Json.write(fields);
    }
}

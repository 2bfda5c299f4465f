package org.trackpose.bridge;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.w3c.dom.Attr;
import org.w3c.dom.Element;
import org.w3c.dom.NamedNodeMap;

/**
 * Detector settings to and from XML attributes, TrackMate style: each value's {@code toString()} is written as an
 * attribute; reading parses each attribute with the type of the key's default value.
 *
 * <p>The core works on a plain {@code Map<String, String>} of attributes so that it needs no XML library; the TrackMate
 * adapter copies it to and from its JDOM element. Overloads for {@code org.w3c.dom.Element} are given for other callers.
 */
public final class SettingsXml {

    private SettingsXml() {
    }

    /** Attributes TrackMate itself puts on the detector element; they are not settings and are skipped. */
    public static final Set<String> TRACKMATE_ATTRIBUTES = Collections.unmodifiableSet(
            new TreeSet<>(Arrays.asList("DETECTOR_NAME")));

    /**
     * Writes every declared setting of {@code settings} into {@code attributes}.
     *
     * @return problems (a missing or null value is not written and gives a message); empty on success
     */
    public static List<String> marshal(Map<String, Object> settings, Map<String, String> attributes) {
        List<String> messages = new ArrayList<>();
        for (DetectorKeys.Setting s : DetectorKeys.SETTINGS) {
            Object v = settings.get(s.key);
            if (v == null) {
                messages.add("cannot save " + s.key + ": no value");
                continue;
            }
            attributes.put(s.key, v.toString());
        }
        return messages;
    }

    /**
     * Reads settings from {@code attributes} into {@code settings}. Every declared key ends up in the map: a key
     * absent from the attributes gets its default (files written by an older version), a malformed value gets its
     * default and a message. Unknown attributes give a message and are not copied.
     *
     * @return problems, each naming the attribute, its text and the expected type; empty on success
     */
    public static List<String> unmarshal(Map<String, String> attributes, Map<String, Object> settings) {
        List<String> messages = new ArrayList<>();
        Map<String, Object> read = DetectorKeys.defaults();
        for (Map.Entry<String, String> a : attributes.entrySet()) {
            String key = a.getKey();
            String text = a.getValue();
            if (TRACKMATE_ATTRIBUTES.contains(key)) {
                continue;
            }
            if (DetectorKeys.LEGACY_KEY_NO_RESAMPLE.equals(key)) {
                if (attributes.containsKey(DetectorKeys.KEY_RESAMPLE)) {
                    continue; // the current name wins
                }
                Object parsed = parse(Boolean.class, text);
                if (parsed == null) {
                    messages.add(malformed(key, text, Boolean.class));
                } else {
                    read.put(DetectorKeys.KEY_RESAMPLE, !(Boolean) parsed);
                }
                continue;
            }
            DetectorKeys.Setting s = DetectorKeys.setting(key);
            if (s == null) {
                messages.add("unknown attribute " + key + "=\"" + text + "\" (not a trackpose detector setting)");
                continue;
            }
            Object parsed = parse(s.type, text);
            if (parsed == null) {
                messages.add(malformed(key, text, s.type));
            } else {
                read.put(key, parsed);
            }
        }
        settings.putAll(read);
        return messages;
    }

    private static String malformed(String key, String text, Class<?> type) {
        String expected = type == Boolean.class ? "true or false"
                : type == Integer.class ? "an integer" : type == Double.class ? "a number" : "text";
        return "malformed value " + key + "=\"" + text + "\": expected " + expected;
    }

    /** Parses {@code text} as {@code type}; null when it is not a valid value of that type. */
    static Object parse(Class<?> type, String text) {
        if (text == null) {
            return null;
        }
        if (type == String.class) {
            return text;
        }
        String t = text.trim();
        if (type == Boolean.class) {
            if (t.equalsIgnoreCase("true")) {
                return Boolean.TRUE;
            }
            if (t.equalsIgnoreCase("false")) {
                return Boolean.FALSE;
            }
            return null;
        }
        try {
            if (type == Integer.class) {
                return Integer.valueOf(t);
            }
            if (type == Double.class) {
                double d = Double.parseDouble(t);
                // parseDouble accepts "NaN", "Infinity" and a trailing 'd'/'f'; toString() never writes the suffixes
                if (Double.isNaN(d) || Double.isInfinite(d) || t.endsWith("d") || t.endsWith("D")
                        || t.endsWith("f") || t.endsWith("F")) {
                    return null;
                }
                return d;
            }
        } catch (NumberFormatException e) {
            return null;
        }
        throw new IllegalArgumentException("unsupported setting type " + type);
    }

    // ------------------------------------------------------------------ org.w3c.dom convenience

    public static List<String> marshal(Map<String, Object> settings, Element element) {
        Map<String, String> attributes = new LinkedHashMap<>();
        List<String> messages = marshal(settings, attributes);
        attributes.forEach(element::setAttribute);
        return messages;
    }

    public static List<String> unmarshal(Element element, Map<String, Object> settings) {
        Map<String, String> attributes = new LinkedHashMap<>();
        NamedNodeMap nodes = element.getAttributes();
        for (int i = 0; i < nodes.getLength(); i++) {
            Attr a = (Attr) nodes.item(i);
            attributes.put(a.getName(), a.getValue());
        }
        return unmarshal(attributes, settings);
    }
}

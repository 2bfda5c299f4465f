package org.trackpose.bridge;

import static org.junit.jupiter.api.Assertions.*;
import static org.trackpose.bridge.DetectorKeys.*;

import java.io.StringReader;
import java.io.StringWriter;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.xml.sax.InputSource;

class SettingsXmlTest {

    private static Map<String, Object> nonDefaults() {
        Map<String, Object> s = DetectorKeys.defaults();
        s.put(KEY_CELLPOSE_MODEL, "nuclei");
        s.put(KEY_CELLPOSE_MODEL_FILEPATH, "C:\\models\\my model \"v2\".pth");
        s.put(KEY_PRETRAINED_OR_CUSTOM, CUSTOM);
        s.put(KEY_TARGET_CHANNEL, 2);
        s.put(KEY_CELL_DIAMETER, 12.345678901234567);
        s.put(KEY_FLOW_THRESHOLD, 0.1 + 0.2);
        s.put(KEY_CELL_PROB_THRESHOLD, -2.5);
        s.put(KEY_RESAMPLE, false);
        s.put(KEY_MIN_SIZE, -1);
        s.put(KEY_MODE_3D, true);
        s.put(KEY_DO2DZ, true);
        s.put(KEY_IOU_THRESHOLD, 0.6);
        s.put(KEY_STITCH_SPLIT, 0.0);
        s.put(KEY_STITCH_TRIM, 0.45);
        s.put(KEY_MIN_MEAN_CELLPROB, 3.5);
        s.put(KEY_STITCH_MIN_MEAN_CELLPROB, 0.5);
        s.put(KEY_WORKERS, 4);
        s.put(KEY_KEEP_TEMP_FOLDER, true);
        s.put(KEY_PYTHON_ENV_KIND, ENV_VENV);
        s.put(KEY_PYTHON_ENV_PATH, "/home/me/venvs/trackpose");
        return s;
    }

    @Test
    void writesEveryKeyWithToString() {
        Map<String, String> attributes = new LinkedHashMap<>();
        assertEquals(List.of(), SettingsXml.marshal(nonDefaults(), attributes));
        assertEquals(DetectorKeys.keys(), List.copyOf(attributes.keySet()));
        assertEquals("0.30000000000000004", attributes.get(KEY_FLOW_THRESHOLD));
        assertEquals("false", attributes.get(KEY_RESAMPLE));
        assertEquals("-1", attributes.get(KEY_MIN_SIZE));
        assertEquals("nuclei", attributes.get(KEY_CELLPOSE_MODEL));
    }

    @Test
    void roundTripKeepsValuesAndTypes() {
        for (Map<String, Object> original : List.of(DetectorKeys.defaults(), nonDefaults())) {
            Map<String, String> attributes = new LinkedHashMap<>();
            SettingsXml.marshal(original, attributes);
            Map<String, Object> read = new HashMap<>();
            assertEquals(List.of(), SettingsXml.unmarshal(attributes, read));
            assertEquals(original, read);
            for (String key : original.keySet()) {
                assertEquals(original.get(key).getClass(), read.get(key).getClass(), key);
            }
        }
    }

    @Test
    void roundTripThroughARealXmlDocument() throws Exception {
        Document doc = DocumentBuilderFactory.newInstance().newDocumentBuilder().newDocument();
        Element e = doc.createElement("DetectorSettings");
        e.setAttribute("DETECTOR_NAME", "TRACKPOSE_DETECTOR");
        doc.appendChild(e);
        assertEquals(List.of(), SettingsXml.marshal(nonDefaults(), e));
        StringWriter text = new StringWriter();
        TransformerFactory.newInstance().newTransformer().transform(new DOMSource(doc), new StreamResult(text));

        Document back = DocumentBuilderFactory.newInstance().newDocumentBuilder()
                .parse(new InputSource(new StringReader(text.toString())));
        Map<String, Object> read = new HashMap<>();
        assertEquals(List.of(), SettingsXml.unmarshal(back.getDocumentElement(), read));
        assertEquals(nonDefaults(), read);
    }

    @Test
    void malformedValuesGiveMessagesAndKeepDefaults() {
        Map<String, String> attributes = new LinkedHashMap<>();
        attributes.put(KEY_FLOW_THRESHOLD, "abc");
        attributes.put(KEY_USE_GPU, "yes");
        attributes.put(KEY_MIN_SIZE, "15.5");
        attributes.put(KEY_CELL_DIAMETER, "NaN");
        attributes.put(KEY_BATCH_SIZE, "");
        attributes.put(KEY_CELL_PROB_THRESHOLD, "1.5");
        Map<String, Object> read = new HashMap<>();
        List<String> m = SettingsXml.unmarshal(attributes, read);
        assertEquals(List.of(
                "malformed value FLOW_THRESHOLD=\"abc\": expected a number",
                "malformed value USE_GPU=\"yes\": expected true or false",
                "malformed value MIN_SIZE=\"15.5\": expected an integer",
                "malformed value CELL_DIAMETER=\"NaN\": expected a number",
                "malformed value BATCH_SIZE=\"\": expected an integer"), m);
        assertEquals(DEFAULT_FLOW_THRESHOLD, read.get(KEY_FLOW_THRESHOLD));
        assertEquals(DEFAULT_USE_GPU, read.get(KEY_USE_GPU));
        assertEquals(1.5, read.get(KEY_CELL_PROB_THRESHOLD), "well-formed values are still read");
    }

    @Test
    void unknownAttributesAreReportedButTrackMatesOwnAreSkipped() {
        Map<String, String> attributes = new LinkedHashMap<>();
        attributes.put("DETECTOR_NAME", "TRACKPOSE_DETECTOR");
        attributes.put("CELLPOSE_PYTHON_FILEPATH", "/usr/bin/python");
        Map<String, Object> read = new HashMap<>();
        List<String> m = SettingsXml.unmarshal(attributes, read);
        assertEquals(List.of("unknown attribute CELLPOSE_PYTHON_FILEPATH=\"/usr/bin/python\" (not a trackpose "
                + "detector setting)"), m);
        assertFalse(read.containsKey("CELLPOSE_PYTHON_FILEPATH"));
        assertFalse(read.containsKey("DETECTOR_NAME"));
    }

    @Test
    void missingAttributesTakeDefaults() {
        Map<String, String> attributes = new LinkedHashMap<>();
        attributes.put(KEY_CELL_DIAMETER, "17.0");
        Map<String, Object> read = new HashMap<>();
        assertEquals(List.of(), SettingsXml.unmarshal(attributes, read));
        Map<String, Object> expected = DetectorKeys.defaults();
        expected.put(KEY_CELL_DIAMETER, 17.0);
        assertEquals(expected, read);
    }

    @Test
    void legacyNoResampleIsReadInverted() {
        Map<String, Object> read = new HashMap<>();
        assertEquals(List.of(), SettingsXml.unmarshal(Map.of("NO_RESAMPLE", "true"), read));
        assertEquals(false, read.get(KEY_RESAMPLE));
        read.clear();
        SettingsXml.unmarshal(Map.of("NO_RESAMPLE", "true", "RESAMPLE", "true"), read);
        assertEquals(true, read.get(KEY_RESAMPLE), "the current name wins");
        assertEquals(List.of("malformed value NO_RESAMPLE=\"maybe\": expected true or false"),
                SettingsXml.unmarshal(Map.of("NO_RESAMPLE", "maybe"), new HashMap<>()));
    }

    @Test
    void marshalReportsMissingValues() {
        Map<String, Object> s = DetectorKeys.defaults();
        s.remove(KEY_USE_GPU);
        Map<String, String> attributes = new LinkedHashMap<>();
        assertEquals(List.of("cannot save USE_GPU: no value"), SettingsXml.marshal(s, attributes));
        assertFalse(attributes.containsKey(KEY_USE_GPU));
    }
}

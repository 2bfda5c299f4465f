package org.trackpose.trackmate;

import static org.junit.jupiter.api.Assertions.*;
import static org.trackpose.bridge.DetectorKeys.*;

import fiji.plugin.trackmate.detection.SpotDetectorFactory;
import fiji.plugin.trackmate.detection.SpotGlobalDetector;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import net.imagej.ImgPlus;
import net.imglib2.type.numeric.real.FloatType;
import org.jdom2.Element;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.scijava.plugin.Plugin;
import org.trackpose.bridge.DetectorKeys;

/** The factory as TrackMate sees it: identity, plugin discovery, settings defaults, validation and XML. */
class TrackposeDetectorFactoryTest {

    private final TrackposeDetectorFactory<FloatType> factory = new TrackposeDetectorFactory<>();

    @TempDir
    Path tmp;

    @Test
    void identifiesItselfToTrackMate() {
        assertEquals("TRACKPOSE_DETECTOR", factory.getKey());
        assertEquals("trackpose (Cellpose advanced)", factory.getName());
        assertTrue(factory.getInfoText().startsWith("<html>") && factory.getInfoText().endsWith("</html>"));
        assertTrue(factory.getUrl().startsWith("https://"), factory.getUrl());
        assertTrue(factory.has2Dsegmentation());
        TrackposeDetectorFactory<FloatType> copy = factory.copy();
        assertNotSame(factory, copy);
        assertEquals(factory.getKey(), copy.getKey());
        assertEquals(factory.getDefaultSettings(), copy.getDefaultSettings());
    }

    @Test
    void isASciJavaPluginOfTheDetectorFactoryType() throws Exception {
        Plugin plugin = TrackposeDetectorFactory.class.getAnnotation(Plugin.class);
        assertNotNull(plugin, "@Plugin kept at run time");
        assertEquals(SpotDetectorFactory.class, plugin.type());
        // the annotation processor wrote the index that Fiji's plugin service reads
        try (InputStream in = getClass().getClassLoader().getResourceAsStream("META-INF/json/org.scijava.plugin.Plugin")) {
            assertNotNull(in, "META-INF/json/org.scijava.plugin.Plugin");
            String index = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(index.contains(TrackposeDetectorFactory.class.getName()), index);
        }
    }

    @Test
    void defaultSettingsAreTheCoresAndValid() {
        Map<String, Object> defaults = factory.getDefaultSettings();
        assertEquals(DetectorKeys.defaults(), defaults);
        assertNull(factory.checkSettings(defaults));
        defaults.put(KEY_FLOW_THRESHOLD, 1.0);
        assertEquals(DEFAULT_FLOW_THRESHOLD, factory.getDefaultSettings().get(KEY_FLOW_THRESHOLD), "a fresh map each time");
    }

    private Element marshalled(Map<String, Object> settings) {
        Element element = new Element("DetectorSettings");
        element.setAttribute("DETECTOR_NAME", factory.getKey()); // TrackMate's writer puts it there first
        assertNull(factory.marshal(settings, element));
        return element;
    }

    @Test
    void defaultSettingsRoundTripThroughXml() {
        Map<String, Object> defaults = factory.getDefaultSettings();
        Element element = marshalled(defaults);
        for (String key : DetectorKeys.keys()) {
            assertEquals(defaults.get(key).toString(), element.getAttributeValue(key), key);
        }
        Map<String, Object> read = new LinkedHashMap<>();
        assertNull(factory.unmarshal(element, read));
        assertEquals(defaults, read);
        for (String key : DetectorKeys.keys()) {
            assertEquals(defaults.get(key).getClass(), read.get(key).getClass(), key + " keeps its type");
        }
    }

    @Test
    void changedSettingsRoundTripThroughXml() throws Exception {
        Path model = Files.createFile(tmp.resolve("my model"));
        Map<String, Object> s = factory.getDefaultSettings();
        s.put(KEY_PRETRAINED_OR_CUSTOM, CUSTOM);
        s.put(KEY_CELLPOSE_MODEL_FILEPATH, model.toString());
        s.put(KEY_CELLPOSE_MODEL, "nuclei");
        s.put(KEY_TARGET_CHANNEL, 2);
        s.put(KEY_OPTIONAL_CHANNEL_2, 1);
        s.put(KEY_CELL_DIAMETER, 12.5);
        s.put(KEY_FLOW_THRESHOLD, 0.0);
        s.put(KEY_CELL_PROB_THRESHOLD, -2.25);
        s.put(KEY_RESAMPLE, false);
        s.put(KEY_NITER, 500);
        s.put(KEY_MIN_SIZE, -1);
        s.put(KEY_MODE_3D, true);
        s.put(KEY_DO2DZ, true);
        s.put(KEY_IOU_THRESHOLD, 0.5);
        s.put(KEY_ANISOTROPY, 3.2);
        s.put(KEY_PYTHON_ENV_KIND, ENV_VENV);
        s.put(KEY_PYTHON_ENV_PATH, "/opt/env with space");
        s.put(KEY_USE_GPU, false);
        s.put(KEY_WORKERS, 3);
        s.put(KEY_KEEP_TEMP_FOLDER, true);
        Map<String, Object> read = new LinkedHashMap<>();
        assertNull(factory.unmarshal(marshalled(s), read));
        assertEquals(s, read);
    }

    @Test
    void olderFilesGetDefaultsAndTheLegacyResampleKey() {
        Element element = new Element("DetectorSettings");
        element.setAttribute("DETECTOR_NAME", factory.getKey());
        element.setAttribute(KEY_CELLPOSE_MODEL, "cyto3");
        element.setAttribute("NO_RESAMPLE", "true"); // TrackMate-Cellpose's name, inverted
        Map<String, Object> read = new LinkedHashMap<>();
        assertNull(factory.unmarshal(element, read));
        assertEquals("cyto3", read.get(KEY_CELLPOSE_MODEL));
        assertEquals(false, read.get(KEY_RESAMPLE));
        assertEquals(DEFAULT_FLOW_THRESHOLD, read.get(KEY_FLOW_THRESHOLD));
    }

    @Test
    void malformedUnknownOrOutOfRangeXmlIsReported() {
        Element element = marshalled(factory.getDefaultSettings());
        element.setAttribute(KEY_FLOW_THRESHOLD, "lots");
        element.setAttribute("COLOUR", "blue");
        Map<String, Object> read = new LinkedHashMap<>();
        String error = factory.unmarshal(element, read);
        assertNotNull(error);
        assertTrue(error.contains("malformed value FLOW_THRESHOLD=\"lots\": expected a number"), error);
        assertTrue(error.contains("unknown attribute COLOUR=\"blue\""), error);
        assertEquals(DEFAULT_FLOW_THRESHOLD, read.get(KEY_FLOW_THRESHOLD), "a malformed value falls back");

        Element outOfRange = marshalled(factory.getDefaultSettings());
        outOfRange.setAttribute(KEY_CELL_PROB_THRESHOLD, "7.5");
        error = factory.unmarshal(outOfRange, new LinkedHashMap<>());
        assertNotNull(error);
        assertTrue(error.contains("CELL_PROB_THRESHOLD = 7.5 is out of range: allowed -6 to 6"), error);
    }

    /** One bad value per setting: below or above its range, or of the wrong type. */
    static Stream<Arguments> badValues() {
        List<Arguments> cases = new ArrayList<>();
        for (DetectorKeys.Setting s : DetectorKeys.SETTINGS) {
            boolean integer = s.type == Integer.class;
            if (s.min != null) {
                Object below = integer ? (Object) (int) (s.min - 1) : (Object) (s.min - 0.5);
                cases.add(Arguments.of(s.key, below, s.key + " = " + below + " is out of range: allowed "
                        + s.rangeText()));
            }
            if (s.max != null && !Double.isInfinite(s.max)) {
                Object above = integer ? (Object) (int) (s.max + 1) : (Object) (s.max + 0.5);
                cases.add(Arguments.of(s.key, above, s.key + " = " + above + " is out of range: allowed "
                        + s.rangeText()));
            }
            if (s.type == Boolean.class) {
                cases.add(Arguments.of(s.key, "yes", s.key + " = \"yes\" must be true or false"));
            } else if (s.type == String.class) {
                cases.add(Arguments.of(s.key, 1, s.key + " = 1 must be text"));
            } else {
                cases.add(Arguments.of(s.key, "1", s.key + " = \"1\" must be " + (integer ? "an integer" : "a number")));
                cases.add(Arguments.of(s.key, Double.NaN, s.key + " = NaN is not a finite number"));
            }
            if (integer) {
                cases.add(Arguments.of(s.key, 2.5, s.key + " = 2.5 must be an integer"));
            }
            if (s.allowed != null) {
                cases.add(Arguments.of(s.key, "other", s.key + " = \"other\" is not one of " + s.allowed));
            }
            cases.add(Arguments.of(s.key, null, s.key + " is missing"));
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} = {1}")
    @MethodSource("badValues")
    void checkSettingsRejectsEachBadValueWithItsMessage(String key, Object value, String message) {
        Map<String, Object> s = factory.getDefaultSettings();
        s.put(key, value);
        String error = factory.checkSettings(s);
        assertNotNull(error, key + " = " + value + " accepted");
        assertTrue(error.contains(message), "expected \"" + message + "\" in:\n" + error);
    }

    @Test
    void messagesSayTheAllowedRangeInWords() {
        Map<String, Object> s = factory.getDefaultSettings();
        s.put(KEY_CELL_DIAMETER, -0.5);
        s.put(KEY_FLOW_THRESHOLD, 3.5);
        String error = factory.checkSettings(s);
        assertTrue(error.contains("CELL_DIAMETER = -0.5 is out of range: allowed at least 0 (object diameter in "
                + "physical units, 0 = estimate)"), error);
        assertTrue(error.contains("FLOW_THRESHOLD = 3.5 is out of range: allowed 0 to 3"), error);
        assertEquals(2, error.split("\n").length, "one line per problem:\n" + error);
    }

    @Test
    void checkSettingsRejectsInconsistentCombinations() {
        Map<String, Object> s = factory.getDefaultSettings();
        s.put(KEY_PRETRAINED_OR_CUSTOM, CUSTOM);
        assertTrue(factory.checkSettings(s).contains("CELLPOSE_MODEL_FILEPATH is empty"), factory.checkSettings(s));
        s.put(KEY_CELLPOSE_MODEL_FILEPATH, tmp.resolve("missing.pth").toString());
        assertTrue(factory.checkSettings(s).contains("no such file"), factory.checkSettings(s));

        s = factory.getDefaultSettings();
        s.put(KEY_DO2DZ, true);
        assertTrue(factory.checkSettings(s).contains("DO2DZ = true needs MODE_3D = true"), factory.checkSettings(s));
        s.put(KEY_MODE_3D, true);
        s.put(KEY_IOU_THRESHOLD, 0.0);
        assertTrue(factory.checkSettings(s).contains("must be above 0"), factory.checkSettings(s));

        s = factory.getDefaultSettings();
        s.put(KEY_CONDA_ENV, " ");
        assertTrue(factory.checkSettings(s).contains("CONDA_ENV is empty"), factory.checkSettings(s));
        s = factory.getDefaultSettings();
        s.put(KEY_PYTHON_ENV_KIND, ENV_VENV);
        assertTrue(factory.checkSettings(s).contains("PYTHON_ENV_PATH is empty"), factory.checkSettings(s));

        s = factory.getDefaultSettings();
        s.put("DIAMETRE", 30.0);
        assertTrue(factory.checkSettings(s).contains("unknown setting DIAMETRE"), factory.checkSettings(s));
    }

    @Test
    void detectorRefusesSettingsThatDoNotFitTheImage() {
        ImgPlus<FloatType> img2D = TestImages.imgPlus(TestImages.blank(20, 10, 1, 1, 2, 0.5, 1));
        Map<String, Object> s = factory.getDefaultSettings();
        s.put(KEY_MODE_3D, true);
        SpotGlobalDetector<FloatType> d = factory.getDetector(img2D, s, TestImages.whole(img2D));
        assertFalse(d.checkInput());
        assertTrue(d.getErrorMessage().contains("MODE_3D = true but the image is 2D"), d.getErrorMessage());

        ImgPlus<FloatType> stack = TestImages.imgPlus(TestImages.blank(20, 10, 2, 3, 1, 0.5, 2));
        s = factory.getDefaultSettings();
        s.put(KEY_TARGET_CHANNEL, 3);
        d = factory.getDetector(stack, s, TestImages.whole(stack));
        assertFalse(d.checkInput());
        assertTrue(d.getErrorMessage().contains("TARGET_CHANNEL = 3 but the image has 2 channels"), d.getErrorMessage());
        assertTrue(d.getErrorMessage().contains("3 Z slices but MODE_3D = false"), d.getErrorMessage());

        s = factory.getDefaultSettings();
        s.put(KEY_FLOW_THRESHOLD, -1.0);
        d = factory.getDetector(img2D, s, TestImages.whole(img2D));
        assertFalse(d.checkInput());
        assertTrue(d.getErrorMessage().contains("FLOW_THRESHOLD = -1.0 is out of range"), d.getErrorMessage());
    }

    @Test
    @SuppressWarnings({"rawtypes", "unchecked"})
    void rgbPixelsAreRefusedWithAWayOut() {
        // TrackMate wraps an RGB ImagePlus as ARGBType pixels, whatever the factory's type bound says
        ImgPlus rgb = new ImgPlus<>(net.imglib2.img.array.ArrayImgs.argbs(8, 8), "rgb",
                new net.imagej.axis.AxisType[] {net.imagej.axis.Axes.X, net.imagej.axis.Axes.Y}, new double[] {1, 1});
        SpotGlobalDetector d = ((TrackposeDetectorFactory) factory).getDetector(rgb, factory.getDefaultSettings(),
                new net.imglib2.FinalInterval(8, 8));
        assertFalse(d.checkInput());
        assertTrue(d.getErrorMessage().contains("Make Composite"), d.getErrorMessage());
    }

    @Test
    void detectorKeepsItsOwnCopyOfTheSettings() {
        ImgPlus<FloatType> img = TestImages.imgPlus(TestImages.blank(20, 10, 1, 1, 1, 0.5, 1));
        Map<String, Object> s = factory.getDefaultSettings();
        SpotGlobalDetector<FloatType> d = factory.getDetector(img, s, TestImages.whole(img));
        s.put(KEY_FLOW_THRESHOLD, 99.0); // the panel changing its map later does not affect a running detector
        assertTrue(d.checkInput(), d.getErrorMessage());
    }
}

package org.trackpose.bridge;

import static org.junit.jupiter.api.Assertions.*;
import static org.trackpose.bridge.DetectorKeys.*;

import ij.measure.Calibration;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DetectorSettingsTest {

    @Test
    void defaultsMirrorTrackMateCellposeAndCellpose() {
        Map<String, Object> d = DetectorKeys.defaults();
        assertEquals("trackpose_default", d.get(KEY_CELLPOSE_MODEL));
        assertEquals("", d.get(KEY_CELLPOSE_MODEL_FILEPATH));
        assertEquals(PRETRAINED, d.get(KEY_PRETRAINED_OR_CUSTOM));
        assertEquals(0, d.get(KEY_TARGET_CHANNEL));
        assertEquals(0, d.get(KEY_OPTIONAL_CHANNEL_2));
        assertEquals(30.0, d.get(KEY_CELL_DIAMETER));
        assertEquals(0.4, d.get(KEY_FLOW_THRESHOLD));
        assertEquals(0.0, d.get(KEY_CELL_PROB_THRESHOLD));
        assertEquals(true, d.get(KEY_RESAMPLE));
        assertEquals(0, d.get(KEY_NITER));
        assertEquals(15, d.get(KEY_MIN_SIZE));
        assertEquals(0, d.get(KEY_MAX_SIZE));
        assertEquals(0.0, d.get(KEY_SMOOTHING));
        assertEquals(true, d.get(KEY_SIMPLIFY_CONTOURS));
        assertEquals(false, d.get(KEY_MODE_3D));
        assertEquals(false, d.get(KEY_DO2DZ));
        assertEquals(0.25, d.get(KEY_IOU_THRESHOLD));
        assertEquals(0.1, d.get(KEY_STITCH_SPLIT));
        assertEquals(0.6, d.get(KEY_STITCH_TRIM));
        assertEquals(2.0, d.get(KEY_MIN_MEAN_CELLPROB));
        assertEquals(1.0, d.get(KEY_STITCH_MIN_MEAN_CELLPROB));
        assertEquals(0.0, d.get(KEY_ANISOTROPY));
        assertEquals(0.0, d.get(KEY_FLOW_3D_SMOOTH));
        assertEquals(true, d.get(KEY_USE_GPU));
        assertEquals(8, d.get(KEY_BATCH_SIZE));
        assertEquals(1, d.get(KEY_WORKERS));
        assertEquals(false, d.get(KEY_KEEP_TEMP_FOLDER));
        assertEquals(ENV_CONDA, d.get(KEY_PYTHON_ENV_KIND));
        assertEquals("trackpose", d.get(KEY_CONDA_ENV));
        assertEquals("", d.get(KEY_PYTHON_ENV_PATH));
        assertEquals("", d.get(KEY_CONDA_EXECUTABLE));
        assertEquals(DetectorKeys.SETTINGS.size(), d.size());
        // typed like TrackMate-Cellpose: Double for thresholds, Integer for channels, Boolean for flags
        assertEquals(Double.class, d.get(KEY_FLOW_THRESHOLD).getClass());
        assertEquals(Integer.class, d.get(KEY_TARGET_CHANNEL).getClass());
        assertEquals(Boolean.class, d.get(KEY_USE_GPU).getClass());
    }

    @Test
    void defaultsAreValidAndFreshEachTime() {
        assertEquals(List.of(), DetectorSettings.defaults().validate());
        Map<String, Object> a = DetectorKeys.defaults();
        a.put(KEY_FLOW_THRESHOLD, 1.0);
        assertEquals(0.4, DetectorKeys.defaults().get(KEY_FLOW_THRESHOLD));
    }

    /** Sets one value on the defaults and returns the only message validate() gives. */
    private static String onlyMessage(String key, Object value) {
        DetectorSettings s = DetectorSettings.defaults().set(key, value);
        List<String> m = s.validate();
        assertEquals(1, m.size(), key + "=" + value + " gave " + m);
        return m.get(0);
    }

    @Test
    void eachOutOfRangeValueNamesKeyValueAndRange() {
        assertEquals("FLOW_THRESHOLD = 4.5 is out of range: allowed 0 to 3 (flow error threshold)",
                onlyMessage(KEY_FLOW_THRESHOLD, 4.5));
        assertEquals("FLOW_THRESHOLD = -0.1 is out of range: allowed 0 to 3 (flow error threshold)",
                onlyMessage(KEY_FLOW_THRESHOLD, -0.1));
        assertEquals("CELL_PROB_THRESHOLD = -7.0 is out of range: allowed -6 to 6 (cell probability threshold)",
                onlyMessage(KEY_CELL_PROB_THRESHOLD, -7.0));
        assertEquals("CELL_PROB_THRESHOLD = 6.5 is out of range: allowed -6 to 6 (cell probability threshold)",
                onlyMessage(KEY_CELL_PROB_THRESHOLD, 6.5));
        assertTrue(onlyMessage(KEY_CELL_DIAMETER, -3.0).startsWith("CELL_DIAMETER = -3.0 is out of range"));
        assertTrue(onlyMessage(KEY_IOU_THRESHOLD, 1.5).startsWith("IOU_THRESHOLD = 1.5 is out of range: allowed 0 to 1"));
        assertTrue(onlyMessage(KEY_MIN_SIZE, -2).startsWith("MIN_SIZE = -2 is out of range: allowed at least -1"));
        assertTrue(onlyMessage(KEY_MAX_SIZE, -1).startsWith("MAX_SIZE = -1 is out of range: allowed at least 0"));
        assertTrue(onlyMessage(KEY_NITER, -5).startsWith("NITER = -5 is out of range"));
        assertTrue(onlyMessage(KEY_BATCH_SIZE, 0).startsWith("BATCH_SIZE = 0 is out of range: allowed 1 to 1024"));
        assertTrue(onlyMessage(KEY_WORKERS, 0).startsWith("WORKERS = 0 is out of range: allowed 1 to 256"));
        assertTrue(onlyMessage(KEY_TARGET_CHANNEL, -1).startsWith("TARGET_CHANNEL = -1 is out of range"));
        assertTrue(onlyMessage(KEY_OPTIONAL_CHANNEL_2, -1).startsWith("OPTIONAL_CHANNEL_2 = -1 is out of range"));
        assertTrue(onlyMessage(KEY_ANISOTROPY, -1.0).startsWith("ANISOTROPY = -1.0 is out of range"));
        assertTrue(onlyMessage(KEY_SMOOTHING, -1.0).startsWith("SMOOTHING = -1.0 is out of range"));
        assertTrue(onlyMessage(KEY_FLOW_3D_SMOOTH, -0.5).startsWith("FLOW_3D_SMOOTH = -0.5 is out of range"));
        assertTrue(onlyMessage(KEY_STITCH_SPLIT, 1.0).startsWith("STITCH_SPLIT = 1.0 is out of range: allowed 0 to "
                + "0.99"), onlyMessage(KEY_STITCH_SPLIT, 1.0));
        assertTrue(onlyMessage(KEY_STITCH_TRIM, -0.1).startsWith("STITCH_TRIM = -0.1 is out of range"));
        assertTrue(onlyMessage(KEY_MIN_MEAN_CELLPROB, 20.0).startsWith("MIN_MEAN_CELLPROB = 20.0 is out of range: "
                + "allowed 0 to 18"), onlyMessage(KEY_MIN_MEAN_CELLPROB, 20.0));
        assertTrue(onlyMessage(KEY_STITCH_MIN_MEAN_CELLPROB, 7.0).startsWith("STITCH_MIN_MEAN_CELLPROB = 7.0 is out "
                + "of range: allowed 0 to 6"), onlyMessage(KEY_STITCH_MIN_MEAN_CELLPROB, 7.0));
    }

    @Test
    void wrongTypesAndNonFiniteNumbersAreNamed() {
        assertEquals("FLOW_THRESHOLD = \"abc\" must be a number (flow error threshold)",
                onlyMessage(KEY_FLOW_THRESHOLD, "abc"));
        assertEquals("MIN_SIZE = 15.5 must be an integer (minimum object size in pixels, -1 = keep all)",
                onlyMessage(KEY_MIN_SIZE, 15.5));
        assertTrue(onlyMessage(KEY_USE_GPU, "yes").startsWith("USE_GPU = \"yes\" must be true or false"));
        assertTrue(onlyMessage(KEY_CELLPOSE_MODEL, 3).startsWith("CELLPOSE_MODEL = 3 must be text"));
        assertTrue(onlyMessage(KEY_CELL_DIAMETER, Double.NaN).startsWith("CELL_DIAMETER = NaN is not a finite number"));
        assertTrue(onlyMessage(KEY_FLOW_THRESHOLD, Double.POSITIVE_INFINITY).contains("not a finite number"));
        assertTrue(onlyMessage(KEY_PYTHON_ENV_KIND, "docker").startsWith(
                "PYTHON_ENV_KIND = \"docker\" is not one of [conda, venv, python]"));
        assertTrue(onlyMessage(KEY_PRETRAINED_OR_CUSTOM, "CUSTOM").contains("is not one of [pretrained, custom]"));
    }

    @Test
    void numbersOfOtherJavaTypesAreAccepted() {
        // scripts (Jython, Python via jpype) hand in Long and Integer where a Double is declared
        DetectorSettings s = DetectorSettings.defaults().set(KEY_CELL_DIAMETER, 25).set(KEY_MIN_SIZE, 20L)
                .set(KEY_FLOW_THRESHOLD, 1.0f).set(KEY_BATCH_SIZE, 4.0);
        assertEquals(List.of(), s.validate());
        assertEquals(25.0, s.number(KEY_CELL_DIAMETER));
        assertEquals(4, s.integer(KEY_BATCH_SIZE));
    }

    @Test
    void missingNullAndUnknownKeysAreReported() {
        DetectorSettings s = DetectorSettings.defaults();
        s.map().remove(KEY_FLOW_THRESHOLD);
        s.set(KEY_USE_GPU, null);
        s.set("FLOW_TRESHOLD", 0.5);
        s.set("LOGGER", new Object()); // TrackMate's own key is tolerated
        List<String> m = s.validate();
        assertEquals(3, m.size(), m.toString());
        assertTrue(m.contains("unknown setting FLOW_TRESHOLD = 0.5 (not a trackpose detector key; misspelt?)"), m.toString());
        assertTrue(m.contains("FLOW_THRESHOLD is missing (flow error threshold; default 0.4)"), m.toString());
        assertTrue(m.contains("USE_GPU is missing (use the GPU when there is one; default true)"), m.toString());
    }

    @Test
    void modelChoiceIsChecked(@TempDir Path dir) throws Exception {
        assertEquals("CELLPOSE_MODEL is empty: choose a model, e.g. trackpose_default",
                onlyMessage(KEY_CELLPOSE_MODEL, "  "));
        DetectorSettings custom = DetectorSettings.defaults().set(KEY_PRETRAINED_OR_CUSTOM, CUSTOM);
        assertEquals(List.of("CELLPOSE_MODEL_FILEPATH is empty but PRETRAINED_OR_CUSTOM = custom: choose the custom "
                + "model file"), custom.validate());
        Path missing = dir.resolve("nope.pth");
        custom.set(KEY_CELLPOSE_MODEL_FILEPATH, missing.toString());
        assertEquals(List.of("CELLPOSE_MODEL_FILEPATH = \"" + missing + "\": no such file"), custom.validate());
        Path model = Files.write(dir.resolve("mine.pth"), new byte[] {1});
        custom.set(KEY_CELLPOSE_MODEL_FILEPATH, model.toString());
        assertEquals(List.of(), custom.validate());
        assertEquals(model.toString(), custom.model());
        assertEquals(model.toString(), custom.toJobSettings(new Calibration()).get("model"));
    }

    @Test
    void crossChecksOf3DOptionsAndEnvironment() {
        assertEquals(List.of("DO2DZ = true needs MODE_3D = true (2D + Z stitching is a 3D mode)"),
                DetectorSettings.defaults().set(KEY_DO2DZ, true).validate());
        assertEquals(List.of("IOU_THRESHOLD = 0.0 with DO2DZ = true: must be above 0 and at most 1 for planes to "
                + "be stitched"), DetectorSettings.defaults().set(KEY_MODE_3D, true).set(KEY_DO2DZ, true)
                        .set(KEY_IOU_THRESHOLD, 0.0).validate());
        assertEquals(List.of("CONDA_ENV is empty: name the conda environment that has trackpose installed"),
                DetectorSettings.defaults().set(KEY_CONDA_ENV, "").validate());
        assertEquals(List.of("PYTHON_ENV_PATH is empty: give the virtual environment folder (PYTHON_ENV_KIND = venv)"),
                DetectorSettings.defaults().set(KEY_PYTHON_ENV_KIND, ENV_VENV).validate());
        assertEquals(List.of("PYTHON_ENV_PATH is empty: give the python executable (PYTHON_ENV_KIND = python)"),
                DetectorSettings.defaults().set(KEY_PYTHON_ENV_KIND, ENV_PYTHON).validate());
    }

    @Test
    void imageChecksCatchMissingChannelsAnd3DMismatch() {
        assertEquals(List.of("TARGET_CHANNEL = 3 but the image has 2 channels (0 = gray/none, 1..2)"),
                DetectorSettings.defaults().set(KEY_TARGET_CHANNEL, 3).validateFor(2, 1));
        assertEquals(List.of("OPTIONAL_CHANNEL_2 = 2 but the image has 1 channel (0 = gray/none, 1..1)"),
                DetectorSettings.defaults().set(KEY_OPTIONAL_CHANNEL_2, 2).validateFor(1, 1));
        assertEquals(List.of("MODE_3D = true but the image is 2D (1 Z slice): switch 3D mode off"),
                DetectorSettings.defaults().set(KEY_MODE_3D, true).validateFor(1, 1));
        assertEquals(List.of("the image has 12 Z slices but MODE_3D = false: set MODE_3D = true (3D, or 2D + Z "
                + "stitching with DO2DZ)"), DetectorSettings.defaults().validateFor(1, 12));
        assertEquals(List.of(), DetectorSettings.defaults().set(KEY_TARGET_CHANNEL, 2).validateFor(2, 1));
        assertEquals(List.of(), DetectorSettings.defaults().set(KEY_MODE_3D, true).validateFor(1, 5));
    }

    @Test
    void jobSettingsFollowTheProtocolAndConvertUnits() {
        Calibration cal = new Calibration();
        cal.pixelWidth = 0.5;
        cal.pixelHeight = 0.5;
        cal.pixelDepth = 2.0;
        cal.setUnit("micron");
        DetectorSettings s = DetectorSettings.defaults().set(KEY_TARGET_CHANNEL, 2).set(KEY_OPTIONAL_CHANNEL_2, 1)
                .set(KEY_CELL_DIAMETER, 15.0).set(KEY_SMOOTHING, 1.0).set(KEY_USE_GPU, false);
        Map<String, Object> j = s.toJobSettings(cal);
        assertEquals(new HashSet<>(Arrays.asList("model", "channels", "diameter", "flow_threshold",
                "cellprob_threshold", "resample", "niter", "min_size", "max_size", "do_3d", "stitch_threshold",
                "anisotropy", "flow3d_smooth", "smoothing", "batch_size", "use_gpu", "workers",
                "simplify_contours")),
                j.keySet());
        assertEquals("trackpose_default", j.get("model"));
        assertEquals(Arrays.asList(2, 1), j.get("channels"));
        assertEquals(30.0, (Double) j.get("diameter"), 1e-12); // 15 micron / 0.5 micron per pixel
        assertEquals(2.0, (Double) j.get("smoothing"), 1e-12);
        assertEquals(0.4, j.get("flow_threshold"));
        assertEquals(0.0, j.get("cellprob_threshold"));
        assertEquals(true, j.get("resample"));
        assertEquals(0, j.get("niter"));
        assertEquals(15, j.get("min_size"));
        assertEquals(false, j.get("do_3d"));
        assertEquals(0.0, j.get("stitch_threshold"));
        assertEquals(0.0, j.get("anisotropy"));
        assertEquals(false, j.get("use_gpu"));
        assertFalse(j.containsKey("bfloat16"), "off: not sent, so that older engines accept the job");
        assertEquals(8, j.get("batch_size"));
        assertEquals(1, j.get("workers"));
        assertEquals(true, j.get("simplify_contours"));
        assertEquals(0.0, s.set(KEY_CELL_DIAMETER, 0.0).toJobSettings(cal).get("diameter"), "0 = estimate");
        // the whole object is JSON-writable
        assertEquals(Json.parse(Json.write(j)), Json.parse(Json.write(s.set(KEY_CELL_DIAMETER, 15.0).toJobSettings(cal))));
        assertEquals(true, s.set(KEY_BFLOAT16, true).toJobSettings(cal).get("bfloat16"));
    }

    @Test
    void threeDModesMapToDo3dOrStitching() {
        Calibration cal = new Calibration();
        cal.pixelWidth = 0.5;
        cal.pixelHeight = 0.5;
        cal.pixelDepth = 2.0;
        Map<String, Object> true3d = DetectorSettings.defaults().set(KEY_MODE_3D, true).toJobSettings(cal);
        assertEquals(true, true3d.get("do_3d"));
        assertEquals(0.0, true3d.get("stitch_threshold"));
        assertFalse(true3d.containsKey("stitch_split") || true3d.containsKey("stitch_trim")
                || true3d.containsKey("stitch_min_mean_cellprob"),
                "sent only with 2D + Z stitching, so that other jobs run on engines older than these keys");
        assertEquals(2.0, true3d.get("min_mean_cellprob"));
        assertEquals(0.0, DetectorSettings.defaults().set(KEY_MODE_3D, true).set(KEY_MIN_MEAN_CELLPROB, 0.0)
                .toJobSettings(cal).get("min_mean_cellprob"));
        assertFalse(DetectorSettings.defaults().toJobSettings(cal).containsKey("min_mean_cellprob"),
                "sent only in 3D mode");
        assertEquals(4.0, (Double) true3d.get("anisotropy"), 1e-12, "from calibration: 2.0 / 0.5");
        Map<String, Object> override = DetectorSettings.defaults().set(KEY_MODE_3D, true).set(KEY_ANISOTROPY, 2.5)
                .toJobSettings(cal);
        assertEquals(2.5, override.get("anisotropy"));
        Map<String, Object> stitched = DetectorSettings.defaults().set(KEY_MODE_3D, true).set(KEY_DO2DZ, true)
                .toJobSettings(cal);
        assertEquals(false, stitched.get("do_3d"));
        assertEquals(0.25, stitched.get("stitch_threshold"));
        assertEquals(0.1, stitched.get("stitch_split"));
        assertEquals(0.6, stitched.get("stitch_trim"));
        assertEquals(1.0, stitched.get("stitch_min_mean_cellprob"));
        assertFalse(stitched.containsKey("min_mean_cellprob"), "3D mode only");
        Map<String, Object> cellposeStitching = DetectorSettings.defaults().set(KEY_MODE_3D, true)
                .set(KEY_DO2DZ, true).set(KEY_STITCH_SPLIT, 0.0).set(KEY_STITCH_TRIM, 0.0)
                .set(KEY_STITCH_MIN_MEAN_CELLPROB, 0.0).toJobSettings(cal);
        assertEquals(0.0, cellposeStitching.get("stitch_split"));
        assertEquals(0.0, cellposeStitching.get("stitch_trim"));
        assertEquals(0.0, cellposeStitching.get("stitch_min_mean_cellprob"));
        assertFalse(DetectorSettings.defaults().toJobSettings(cal).containsKey("stitch_min_mean_cellprob"),
                "sent only with 2D + Z stitching");
        assertEquals(true, DetectorSettings.defaults().set(KEY_MODE_3D, true).jobOutputs().get("meshes"));
        assertEquals(false, DetectorSettings.defaults().jobOutputs().get("meshes"));
    }

    @Test
    void gettersRefuseInvalidValues() {
        DetectorSettings s = DetectorSettings.defaults().set(KEY_FLOW_THRESHOLD, "high");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> s.number(KEY_FLOW_THRESHOLD));
        assertTrue(e.getMessage().contains("FLOW_THRESHOLD"));
    }
}

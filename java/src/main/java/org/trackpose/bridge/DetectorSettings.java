package org.trackpose.bridge;

import static org.trackpose.bridge.DetectorKeys.*;

import ij.measure.Calibration;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A typed view over a TrackMate-style settings map (keys from {@link DetectorKeys}).
 *
 * <p>The map stays the single source of truth: the view reads it on each call and never copies it. Typed getters
 * assume {@link #validate()} found nothing wrong; they throw {@link IllegalStateException} otherwise.
 */
public final class DetectorSettings {

    /** Keys TrackMate puts in a detector's settings map that are not detector settings. */
    public static final Set<String> FOREIGN_KEYS = new TreeSet<>(Arrays.asList("LOGGER"));

    private final Map<String, Object> map;

    /** A view over {@code map} (not a copy). */
    public DetectorSettings(Map<String, Object> map) {
        if (map == null) {
            throw new IllegalArgumentException("settings map is null");
        }
        this.map = map;
    }

    /** A view over a fresh map of defaults. */
    public static DetectorSettings defaults() {
        return new DetectorSettings(DetectorKeys.defaults());
    }

    public Map<String, Object> map() {
        return map;
    }

    public DetectorSettings set(String key, Object value) {
        map.put(key, value);
        return this;
    }

    // ------------------------------------------------------------------ validation

    /**
     * Everything wrong with the settings on their own, one message per problem, each naming the key, the value
     * and what is allowed. Empty when the settings can be used.
     */
    public List<String> validate() {
        List<String> messages = new ArrayList<>();
        for (String key : new TreeSet<>(map.keySet())) {
            if (DetectorKeys.setting(key) == null && !FOREIGN_KEYS.contains(key)) {
                messages.add("unknown setting " + key + " = " + show(map.get(key))
                        + " (not a trackpose detector key; misspelt?)");
            }
        }
        for (Setting s : SETTINGS) {
            checkOne(s, messages);
        }
        if (!messages.isEmpty()) {
            return messages; // cross-checks below assume well-typed values
        }
        if (CUSTOM.equals(map.get(KEY_PRETRAINED_OR_CUSTOM))) {
            String path = ((String) map.get(KEY_CELLPOSE_MODEL_FILEPATH)).trim();
            if (path.isEmpty()) {
                messages.add(KEY_CELLPOSE_MODEL_FILEPATH + " is empty but " + KEY_PRETRAINED_OR_CUSTOM + " = "
                        + CUSTOM + ": choose the custom model file");
            } else if (!isFile(path)) {
                messages.add(KEY_CELLPOSE_MODEL_FILEPATH + " = \"" + path + "\": no such file");
            }
        } else if (((String) map.get(KEY_CELLPOSE_MODEL)).trim().isEmpty()) {
            messages.add(KEY_CELLPOSE_MODEL + " is empty: choose a model, e.g. " + DEFAULT_CELLPOSE_MODEL);
        }
        if (doStitch2DZ() && !mode3D()) {
            messages.add(KEY_DO2DZ + " = true needs " + KEY_MODE_3D + " = true (2D + Z stitching is a 3D mode)");
        }
        if (doStitch2DZ() && iouThreshold() <= 0) {
            messages.add(KEY_IOU_THRESHOLD + " = " + show(map.get(KEY_IOU_THRESHOLD))
                    + " with " + KEY_DO2DZ + " = true: must be above 0 and at most 1 for planes to be stitched");
        }
        String kind = (String) map.get(KEY_PYTHON_ENV_KIND);
        if (ENV_CONDA.equals(kind) && ((String) map.get(KEY_CONDA_ENV)).trim().isEmpty()) {
            messages.add(KEY_CONDA_ENV + " is empty: name the conda environment that has trackpose installed");
        }
        if ((ENV_VENV.equals(kind) || ENV_PYTHON.equals(kind))
                && ((String) map.get(KEY_PYTHON_ENV_PATH)).trim().isEmpty()) {
            messages.add(KEY_PYTHON_ENV_PATH + " is empty: give the " + (ENV_VENV.equals(kind)
                    ? "virtual environment folder" : "python executable") + " (" + KEY_PYTHON_ENV_KIND + " = "
                    + kind + ")");
        }
        return messages;
    }

    /**
     * {@link #validate()} plus the checks that need the image: channels that exist, 3D options only on Z stacks.
     *
     * @param nChannels channels in the image (at least 1)
     * @param nSlices   Z slices in the image (1 for 2D)
     */
    public List<String> validateFor(int nChannels, int nSlices) {
        List<String> messages = validate();
        if (!messages.isEmpty()) {
            return messages;
        }
        for (String key : Arrays.asList(KEY_TARGET_CHANNEL, KEY_OPTIONAL_CHANNEL_2)) {
            int c = integer(key);
            if (c > nChannels) {
                messages.add(key + " = " + c + " but the image has " + nChannels + " channel"
                        + (nChannels == 1 ? "" : "s") + " (0 = gray/none, 1.." + nChannels + ")");
            }
        }
        if (mode3D() && nSlices <= 1) {
            messages.add(KEY_MODE_3D + " = true but the image is 2D (1 Z slice): switch 3D mode off");
        } else if (!mode3D() && nSlices > 1) {
            messages.add("the image has " + nSlices + " Z slices but " + KEY_MODE_3D + " = false: set "
                    + KEY_MODE_3D + " = true (3D, or 2D + Z stitching with " + KEY_DO2DZ + ")");
        }
        return messages;
    }

    private void checkOne(Setting s, List<String> messages) {
        if (!map.containsKey(s.key) || map.get(s.key) == null) {
            messages.add(s.key + " is missing (" + s.meaning + "; default " + show(s.defaultValue) + ")");
            return;
        }
        Object v = map.get(s.key);
        if (s.type == Boolean.class) {
            if (!(v instanceof Boolean)) {
                messages.add(s.key + " = " + show(v) + " must be true or false (" + s.meaning + ")");
            }
        } else if (s.type == String.class) {
            if (!(v instanceof String)) {
                messages.add(s.key + " = " + show(v) + " must be text (" + s.meaning + ")");
            } else if (s.allowed != null && !s.allowed.contains(v)) {
                messages.add(s.key + " = " + show(v) + " is not one of " + s.allowed + " (" + s.meaning + ")");
            }
        } else {
            if (!(v instanceof Number)) {
                messages.add(s.key + " = " + show(v) + " must be " + (s.type == Integer.class ? "an integer"
                        : "a number") + " (" + s.meaning + ")");
                return;
            }
            double d = ((Number) v).doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                messages.add(s.key + " = " + show(v) + " is not a finite number (" + s.meaning + ")");
            } else if (s.type == Integer.class && (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE)) {
                messages.add(s.key + " = " + show(v) + " must be an integer (" + s.meaning + ")");
            } else if ((s.min != null && d < s.min) || (s.max != null && d > s.max)) {
                messages.add(s.key + " = " + show(v) + " is out of range: allowed " + s.rangeText() + " ("
                        + s.meaning + ")");
            }
        }
    }

    private static boolean isFile(String path) {
        try {
            return Files.isRegularFile(Paths.get(path));
        } catch (InvalidPathException e) {
            return false;
        }
    }

    static String show(Object v) {
        if (v == null) {
            return "null";
        }
        if (v instanceof String) {
            return "\"" + v + "\"";
        }
        return v.toString();
    }

    // ------------------------------------------------------------------ typed getters

    private Object value(String key, Class<?> type) {
        Object v = map.get(key);
        if (!type.isInstance(v)) {
            throw new IllegalStateException("setting " + key + " = " + show(v) + " is not a "
                    + type.getSimpleName() + "; call validate() first");
        }
        return v;
    }

    public double number(String key) {
        return ((Number) value(key, Number.class)).doubleValue();
    }

    public int integer(String key) {
        return (int) Math.round(number(key));
    }

    public boolean flag(String key) {
        return (Boolean) value(key, Boolean.class);
    }

    public String text(String key) {
        return (String) value(key, String.class);
    }

    public boolean isCustomModel() {
        return CUSTOM.equals(text(KEY_PRETRAINED_OR_CUSTOM));
    }

    /** What the engine receives as {@code model}: the built-in name or the custom file path. */
    public String model() {
        return isCustomModel() ? text(KEY_CELLPOSE_MODEL_FILEPATH).trim() : text(KEY_CELLPOSE_MODEL).trim();
    }

    public boolean mode3D() {
        return flag(KEY_MODE_3D);
    }

    public boolean doStitch2DZ() {
        return flag(KEY_DO2DZ);
    }

    public double iouThreshold() {
        return number(KEY_IOU_THRESHOLD);
    }

    public boolean keepTempFolder() {
        return flag(KEY_KEEP_TEMP_FOLDER);
    }

    // ------------------------------------------------------------------ protocol

    /**
     * The {@code settings} object of job.json (bridge protocol v1) for an image with this calibration.
     * Physical lengths become pixels: {@code diameter = CELL_DIAMETER / pixelWidth} (0 stays 0 = estimate),
     * {@code smoothing = SMOOTHING / pixelWidth}; in 3D an {@code ANISOTROPY} of 0 becomes
     * {@code pixelDepth / pixelWidth}.
     */
    public Map<String, Object> toJobSettings(Calibration calibration) {
        double pw = positiveOr1(calibration == null ? 1 : calibration.pixelWidth);
        double pd = positiveOr1(calibration == null ? 1 : calibration.pixelDepth);
        boolean threeD = mode3D();
        boolean stitch = threeD && doStitch2DZ();

        Map<String, Object> s = new LinkedHashMap<>();
        s.put("model", model());
        s.put("channels", Arrays.asList(integer(KEY_TARGET_CHANNEL), integer(KEY_OPTIONAL_CHANNEL_2)));
        s.put("diameter", number(KEY_CELL_DIAMETER) / pw);
        s.put("flow_threshold", number(KEY_FLOW_THRESHOLD));
        s.put("cellprob_threshold", number(KEY_CELL_PROB_THRESHOLD));
        s.put("resample", flag(KEY_RESAMPLE));
        s.put("niter", integer(KEY_NITER));
        s.put("min_size", integer(KEY_MIN_SIZE));
        s.put("max_size", integer(KEY_MAX_SIZE));
        s.put("do_3d", threeD && !stitch);
        s.put("stitch_threshold", stitch ? iouThreshold() : 0.0);
        if (stitch) { // sent only with 2D + Z stitching: other jobs also run on engines older than these keys
            s.put("stitch_split", number(KEY_STITCH_SPLIT));
            s.put("stitch_trim", number(KEY_STITCH_TRIM));
            s.put("stitch_min_mean_cellprob", number(KEY_STITCH_MIN_MEAN_CELLPROB));
        } else if (threeD) { // sent only in 3D mode, for the same reason
            s.put("min_mean_cellprob", number(KEY_MIN_MEAN_CELLPROB));
        }
        double anisotropy = number(KEY_ANISOTROPY);
        if (threeD && anisotropy == 0) {
            anisotropy = pd / pw;
        }
        s.put("anisotropy", threeD ? anisotropy : 0.0);
        s.put("flow3d_smooth", threeD ? number(KEY_FLOW_3D_SMOOTH) : 0.0);
        s.put("smoothing", number(KEY_SMOOTHING) / pw);
        s.put("batch_size", integer(KEY_BATCH_SIZE));
        s.put("use_gpu", flag(KEY_USE_GPU));
        if (flag(KEY_BFLOAT16)) { // sent only when on: engines older than the setting still accept the job
            s.put("bfloat16", true);
        }
        s.put("workers", integer(KEY_WORKERS));
        s.put("simplify_contours", flag(KEY_SIMPLIFY_CONTOURS));
        return s;
    }

    /** The {@code outputs} object of job.json: labels and shapes always, meshes in 3D. */
    public Map<String, Object> jobOutputs() {
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("labels", true);
        o.put("shapes", true);
        o.put("meshes", mode3D());
        return o;
    }

    private static double positiveOr1(double d) {
        return d > 0 && !Double.isInfinite(d) ? d : 1.0;
    }

    @Override
    public String toString() {
        return "DetectorSettings" + map;
    }
}

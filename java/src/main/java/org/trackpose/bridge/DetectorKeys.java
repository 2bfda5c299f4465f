package org.trackpose.bridge;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The detector's settings keys, declared once, with their defaults, types and allowed ranges.
 *
 * <p>Keys mirror TrackMate-Cellpose's advanced detector where it has one ({@code CELLPOSE_MODEL},
 * {@code TARGET_CHANNEL}, {@code CELL_DIAMETER}, {@code FLOW_THRESHOLD}, ...) so that scripts written for it read the
 * same; the rest (3D mode, stitching, engine options, Python environment) are trackpose's own. Values are stored in
 * TrackMate's style: a flat {@code Map<String, Object>} of {@code String}, {@code Integer}, {@code Double} and
 * {@code Boolean}. Defaults equal cellpose 3.1's where the engine has the same option.
 */
public final class DetectorKeys {

    private DetectorKeys() {
    }

    // ---- model

    /** Name of a built-in model (trackpose's own or a cellpose name such as cyto3, nuclei). */
    public static final String KEY_CELLPOSE_MODEL = "CELLPOSE_MODEL";
    public static final String DEFAULT_CELLPOSE_MODEL = "trackpose_default";

    /** Path to a custom model file, used when {@link #KEY_PRETRAINED_OR_CUSTOM} is {@link #CUSTOM}. */
    public static final String KEY_CELLPOSE_MODEL_FILEPATH = "CELLPOSE_MODEL_FILEPATH";
    public static final String DEFAULT_CELLPOSE_MODEL_FILEPATH = "";

    /** Whether the model is a built-in name ({@link #PRETRAINED}) or a file ({@link #CUSTOM}). */
    public static final String KEY_PRETRAINED_OR_CUSTOM = "PRETRAINED_OR_CUSTOM";
    public static final String PRETRAINED = "pretrained";
    public static final String CUSTOM = "custom";
    public static final String DEFAULT_PRETRAINED_OR_CUSTOM = PRETRAINED;

    /** Built-in model names offered in the UI; other names are passed on and resolved by the engine. */
    public static final List<String> BUILT_IN_MODELS = Collections.unmodifiableList(Arrays.asList(
            "trackpose_default", "cyto3", "nuclei", "cyto2", "cyto", "tissuenet_cp3", "livecell_cp3",
            "yeast_PhC_cp3", "yeast_BF_cp3", "bact_phase_cp3", "bact_fluor_cp3", "deepbacs_cp3"));

    // ---- channels (cellpose convention: 0 = gray / none, then 1-based channel indices)

    public static final String KEY_TARGET_CHANNEL = "TARGET_CHANNEL";
    public static final Integer DEFAULT_TARGET_CHANNEL = 0;

    public static final String KEY_OPTIONAL_CHANNEL_2 = "OPTIONAL_CHANNEL_2";
    public static final Integer DEFAULT_OPTIONAL_CHANNEL_2 = 0;

    // ---- segmentation

    /** Expected object diameter in physical units (the image's calibration); 0 = let the engine estimate it. */
    public static final String KEY_CELL_DIAMETER = "CELL_DIAMETER";
    public static final Double DEFAULT_CELL_DIAMETER = 30.0;

    public static final String KEY_FLOW_THRESHOLD = "FLOW_THRESHOLD";
    public static final Double DEFAULT_FLOW_THRESHOLD = 0.4;

    /** Threshold on the network's cell-probability logit. */
    public static final String KEY_CELL_PROB_THRESHOLD = "CELL_PROB_THRESHOLD";
    public static final Double DEFAULT_CELL_PROB_THRESHOLD = 0.0;

    /**
     * Run the dynamics on flows resized to the image (true) or at network scale (false). TrackMate-Cellpose's
     * released detector stored the inverse as {@code NO_RESAMPLE}; {@link SettingsXml} reads that name too.
     */
    public static final String KEY_RESAMPLE = "RESAMPLE";
    public static final Boolean DEFAULT_RESAMPLE = true;
    /** Legacy name, read (inverted) from XML only. */
    public static final String LEGACY_KEY_NO_RESAMPLE = "NO_RESAMPLE";

    /** Dynamics iterations; 0 = engine default (cellpose's). */
    public static final String KEY_NITER = "NITER";
    public static final Integer DEFAULT_NITER = 0;

    /** Objects smaller than this many pixels (voxels in 3D) are removed; -1 keeps all. */
    public static final String KEY_MIN_SIZE = "MIN_SIZE";
    public static final Integer DEFAULT_MIN_SIZE = 15;

    /** Objects larger than this many pixels (voxels) are removed; 0 = engine default. */
    public static final String KEY_MAX_SIZE = "MAX_SIZE";
    public static final Integer DEFAULT_MAX_SIZE = 0;

    /** 3D surface (mesh) smoothing scale in physical units, on top of SIMPLIFY_CONTOURS; 0 = none. */
    public static final String KEY_SMOOTHING = "SMOOTHING";
    public static final Double DEFAULT_SMOOTHING = 0.0;

    /**
     * Shapes that measure like the object: 2D outlines smoothed to sub-pixel precision and simplified; 3D surfaces
     * without the voxel staircase and decimated (as TrackMate 9's label-image detector decimates with this key).
     * Off: the exact pixel / voxel boundary.
     */
    public static final String KEY_SIMPLIFY_CONTOURS = "SIMPLIFY_CONTOURS";
    public static final Boolean DEFAULT_SIMPLIFY_CONTOURS = true;

    // ---- 3D

    /** Treat Z stacks as volumes: true 3D segmentation, or 2D per plane + stitching when {@link #KEY_DO2DZ}. */
    public static final String KEY_MODE_3D = "MODE_3D";
    public static final Boolean DEFAULT_MODE_3D = false;

    /** In 3D mode: segment each plane in 2D and stitch planes by overlap instead of running true 3D. */
    public static final String KEY_DO2DZ = "DO2DZ";
    public static final Boolean DEFAULT_DO2DZ = false;

    /** Minimum IoU to stitch objects across planes (2D + Z). */
    public static final String KEY_IOU_THRESHOLD = "IOU_THRESHOLD";
    public static final Double DEFAULT_IOU_THRESHOLD = 0.25;

    /**
     * 2D + Z: cut a stitched object where its mean intensity along Z dips this fraction below the brighter planes
     * on both sides (nuclei chained to the ones above them); 0 = never (cellpose's stitching).
     */
    public static final String KEY_STITCH_SPLIT = "STITCH_SPLIT";
    public static final Double DEFAULT_STITCH_SPLIT = 0.1;

    /**
     * 2D + Z: drop a stitched object's top and bottom planes that are dimmer than this fraction of its brightest
     * plane (out-of-focus light); 0 = never (cellpose's stitching).
     */
    public static final String KEY_STITCH_TRIM = "STITCH_TRIM";
    public static final Double DEFAULT_STITCH_TRIM = 0.6;

    /**
     * 3D mode: remove objects whose mean cell-probability logit (summed over the three views) is below this: faint
     * blobs of haze between crowded nuclei; 0 = keep every object (cellpose's 3D mode).
     */
    public static final String KEY_MIN_MEAN_CELLPROB = "MIN_MEAN_CELLPROB";
    public static final Double DEFAULT_MIN_MEAN_CELLPROB = 2.0;

    /**
     * 2D + Z: remove stitched objects whose mean cell-probability logit (one view's) is below this: faint blobs of
     * haze and out-of-focus light; 0 = keep every object (with STITCH_SPLIT and STITCH_TRIM 0: cellpose's stitching).
     */
    public static final String KEY_STITCH_MIN_MEAN_CELLPROB = "STITCH_MIN_MEAN_CELLPROB";
    public static final Double DEFAULT_STITCH_MIN_MEAN_CELLPROB = 1.0;

    /** Z / XY voxel size ratio; 0 = taken from the image calibration. */
    public static final String KEY_ANISOTROPY = "ANISOTROPY";
    public static final Double DEFAULT_ANISOTROPY = 0.0;

    /** Gaussian smoothing (pixels) of the 3D flows; 0 = none. */
    public static final String KEY_FLOW_3D_SMOOTH = "FLOW_3D_SMOOTH";
    public static final Double DEFAULT_FLOW_3D_SMOOTH = 0.0;

    // ---- execution

    public static final String KEY_USE_GPU = "USE_GPU";
    public static final Boolean DEFAULT_USE_GPU = true;

    /**
     * Run the network in bfloat16: about 1.7x faster on CPUs with AVX512-BF16 or AMX and on recent GPUs, nearly the
     * same objects; off = float32, cellpose's numbers.
     */
    public static final String KEY_BFLOAT16 = "BFLOAT16";
    public static final Boolean DEFAULT_BFLOAT16 = false;

    public static final String KEY_BATCH_SIZE = "BATCH_SIZE";
    public static final Integer DEFAULT_BATCH_SIZE = 8;

    /** Parallel engine processes over frames. */
    public static final String KEY_WORKERS = "WORKERS";
    public static final Integer DEFAULT_WORKERS = 1;

    /** Keep the job folder after the run (for debugging); by default it is deleted. */
    public static final String KEY_KEEP_TEMP_FOLDER = "KEEP_TEMP_FOLDER";
    public static final Boolean DEFAULT_KEEP_TEMP_FOLDER = false;

    // ---- Python environment

    /** How Python is found: {@link #ENV_CONDA}, {@link #ENV_VENV} or {@link #ENV_PYTHON}. */
    public static final String KEY_PYTHON_ENV_KIND = "PYTHON_ENV_KIND";
    public static final String ENV_CONDA = "conda";
    public static final String ENV_VENV = "venv";
    public static final String ENV_PYTHON = "python";
    public static final String DEFAULT_PYTHON_ENV_KIND = ENV_CONDA;

    /** Conda / mamba environment name (or prefix path) used with {@code conda run}. */
    public static final String KEY_CONDA_ENV = "CONDA_ENV";
    public static final String DEFAULT_CONDA_ENV = "trackpose";

    /** The venv folder ({@link #ENV_VENV}) or the python executable ({@link #ENV_PYTHON}). */
    public static final String KEY_PYTHON_ENV_PATH = "PYTHON_ENV_PATH";
    public static final String DEFAULT_PYTHON_ENV_PATH = "";

    /** conda, mamba or micromamba executable; empty = detect it. */
    public static final String KEY_CONDA_EXECUTABLE = "CONDA_EXECUTABLE";
    public static final String DEFAULT_CONDA_EXECUTABLE = "";

    /** A settings key with its type, default and allowed values. */
    public static final class Setting {
        public final String key;
        public final Class<?> type;
        public final Object defaultValue;
        /** Inclusive bounds for numbers (null = unbounded). */
        public final Double min;
        public final Double max;
        /** Allowed values for a string setting, or null for free text. */
        public final List<String> allowed;
        /** A few words saying what it is, for messages. */
        public final String meaning;

        Setting(String key, Object defaultValue, Double min, Double max, List<String> allowed, String meaning) {
            this.key = key;
            this.type = defaultValue.getClass();
            this.defaultValue = defaultValue;
            this.min = min;
            this.max = max;
            this.allowed = allowed;
            this.meaning = meaning;
        }

        /** "0 to 3", "at least 1", ... (an infinite bound is no bound). */
        public String rangeText() {
            boolean lower = min != null && !min.isInfinite();
            boolean upper = max != null && !max.isInfinite();
            if (lower && upper) {
                return format(min) + " to " + format(max);
            }
            if (lower) {
                return "at least " + format(min);
            }
            if (upper) {
                return "at most " + format(max);
            }
            return "any value";
        }

        private static String format(double d) {
            return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
        }
    }

    private static Setting num(String key, Object def, Double min, Double max, String meaning) {
        return new Setting(key, def, min, max, null, meaning);
    }

    private static Setting flag(String key, Boolean def, String meaning) {
        return new Setting(key, def, null, null, null, meaning);
    }

    private static Setting text(String key, String def, List<String> allowed, String meaning) {
        return new Setting(key, def, null, null, allowed, meaning);
    }

    private static final double INF = Double.POSITIVE_INFINITY;

    /** Every setting, in the order a panel shows them. */
    public static final List<Setting> SETTINGS = Collections.unmodifiableList(Arrays.asList(
            text(KEY_CELLPOSE_MODEL, DEFAULT_CELLPOSE_MODEL, null, "built-in model name"),
            text(KEY_CELLPOSE_MODEL_FILEPATH, DEFAULT_CELLPOSE_MODEL_FILEPATH, null, "custom model file"),
            text(KEY_PRETRAINED_OR_CUSTOM, DEFAULT_PRETRAINED_OR_CUSTOM, Arrays.asList(PRETRAINED, CUSTOM),
                    "built-in model or custom file"),
            num(KEY_TARGET_CHANNEL, DEFAULT_TARGET_CHANNEL, 0.0, null, "channel to segment, 0 = gray"),
            num(KEY_OPTIONAL_CHANNEL_2, DEFAULT_OPTIONAL_CHANNEL_2, 0.0, null, "optional nuclear channel, 0 = none"),
            num(KEY_CELL_DIAMETER, DEFAULT_CELL_DIAMETER, 0.0, INF, "object diameter in physical units, 0 = estimate"),
            num(KEY_FLOW_THRESHOLD, DEFAULT_FLOW_THRESHOLD, 0.0, 3.0, "flow error threshold"),
            num(KEY_CELL_PROB_THRESHOLD, DEFAULT_CELL_PROB_THRESHOLD, -6.0, 6.0, "cell probability threshold"),
            flag(KEY_RESAMPLE, DEFAULT_RESAMPLE, "run dynamics at image size"),
            num(KEY_NITER, DEFAULT_NITER, 0.0, 100000.0, "dynamics iterations, 0 = engine default"),
            num(KEY_MIN_SIZE, DEFAULT_MIN_SIZE, -1.0, null, "minimum object size in pixels, -1 = keep all"),
            num(KEY_MAX_SIZE, DEFAULT_MAX_SIZE, 0.0, null, "maximum object size in pixels, 0 = engine default"),
            num(KEY_SMOOTHING, DEFAULT_SMOOTHING, 0.0, INF, "3D surface smoothing scale in physical units, 0 = none"),
            flag(KEY_SIMPLIFY_CONTOURS, DEFAULT_SIMPLIFY_CONTOURS, "simplify 2D outlines and 3D surfaces"),
            flag(KEY_MODE_3D, DEFAULT_MODE_3D, "segment Z stacks in 3D"),
            flag(KEY_DO2DZ, DEFAULT_DO2DZ, "2D per plane + Z stitching"),
            num(KEY_IOU_THRESHOLD, DEFAULT_IOU_THRESHOLD, 0.0, 1.0, "IoU threshold for Z stitching"),
            num(KEY_STITCH_SPLIT, DEFAULT_STITCH_SPLIT, 0.0, 0.99, "Z stitching: cut at intensity dips this deep"),
            num(KEY_STITCH_TRIM, DEFAULT_STITCH_TRIM, 0.0, 0.99, "Z stitching: trim end planes dimmer than this"),
            num(KEY_MIN_MEAN_CELLPROB, DEFAULT_MIN_MEAN_CELLPROB, 0.0, 18.0,
                    "3D mode: remove objects with a mean cell probability below this"),
            num(KEY_STITCH_MIN_MEAN_CELLPROB, DEFAULT_STITCH_MIN_MEAN_CELLPROB, 0.0, 6.0,
                    "Z stitching: remove objects with a mean cell probability below this"),
            num(KEY_ANISOTROPY, DEFAULT_ANISOTROPY, 0.0, 100.0, "Z / XY voxel size ratio, 0 = from calibration"),
            num(KEY_FLOW_3D_SMOOTH, DEFAULT_FLOW_3D_SMOOTH, 0.0, 100.0, "3D flow smoothing in pixels"),
            flag(KEY_USE_GPU, DEFAULT_USE_GPU, "use the GPU when there is one"),
            flag(KEY_BFLOAT16, DEFAULT_BFLOAT16, "run the network in bfloat16"),
            num(KEY_BATCH_SIZE, DEFAULT_BATCH_SIZE, 1.0, 1024.0, "network batch size"),
            num(KEY_WORKERS, DEFAULT_WORKERS, 1.0, 256.0, "parallel engine processes"),
            flag(KEY_KEEP_TEMP_FOLDER, DEFAULT_KEEP_TEMP_FOLDER, "keep the job folder"),
            text(KEY_PYTHON_ENV_KIND, DEFAULT_PYTHON_ENV_KIND, Arrays.asList(ENV_CONDA, ENV_VENV, ENV_PYTHON),
                    "how Python is found"),
            text(KEY_CONDA_ENV, DEFAULT_CONDA_ENV, null, "conda environment"),
            text(KEY_PYTHON_ENV_PATH, DEFAULT_PYTHON_ENV_PATH, null, "venv folder or python executable"),
            text(KEY_CONDA_EXECUTABLE, DEFAULT_CONDA_EXECUTABLE, null, "conda executable, empty = detect")));

    private static final Map<String, Setting> BY_KEY;

    static {
        Map<String, Setting> m = new LinkedHashMap<>();
        for (Setting s : SETTINGS) {
            if (m.put(s.key, s) != null) {
                throw new AssertionError("key declared twice: " + s.key);
            }
        }
        BY_KEY = Collections.unmodifiableMap(m);
    }

    /** The setting for a key, or null if the key is not one of ours. */
    public static Setting setting(String key) {
        return BY_KEY.get(key);
    }

    /** All keys, in declaration order. */
    public static List<String> keys() {
        return Collections.unmodifiableList(new java.util.ArrayList<>(BY_KEY.keySet()));
    }

    /** A fresh, mutable map holding every default. */
    public static Map<String, Object> defaults() {
        Map<String, Object> m = new LinkedHashMap<>();
        for (Setting s : SETTINGS) {
            m.put(s.key, s.defaultValue);
        }
        return m;
    }
}

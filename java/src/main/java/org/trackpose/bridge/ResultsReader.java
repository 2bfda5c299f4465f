package org.trackpose.bridge;

import ij.ImagePlus;
import ij.ImageStack;
import ij.io.FileInfo;
import ij.io.Opener;
import ij.io.TiffDecoder;
import ij.measure.Calibration;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Reads a finished job's labels.tif and shapes.json back into {@link DetectedObject}s in the caller's physical
 * coordinates.
 *
 * <p>The label image is the reference: an object's centroid and size are computed from its pixels; shapes.json
 * gives its polygon (2D) or mesh (3D) and its quality. Both files must agree: every requested frame present, the
 * same label ids in both (every shapes.json object has its label in labels.tif; in 3D every label of labels.tif has
 * its shapes.json object). Anything missing, unreadable or inconsistent is a {@link BridgeException} of kind OUTPUT,
 * never an empty result. 2D objects whose outline has fewer than 3 vertices or no area are left out, as TrackMate
 * does: a polygon like that in shapes.json, or a label that shapes.json leaves out for that reason (counted in
 * {@link Detections#dropped()}).
 */
public final class ResultsReader {

    private ResultsReader() {
    }

    /** Per-label pixel statistics of one frame, accumulated run by run. */
    private static final class LabelStats {
        long n;
        double sumX;
        double sumY;
        double sumZ;
    }

    public static Detections read(Path dir, JobInput input, BridgeLogger logger) throws BridgeException {
        if (logger == null) {
            logger = BridgeLogger.NONE;
        }
        int[] frames = input.frames();
        int nZ = input.nSlices();
        boolean threeD = nZ > 1;
        ImagePlus labels = openLabels(dir.resolve(JobFolder.LABELS), input);
        List<Map<Integer, LabelStats>> stats = new ArrayList<>();
        for (int t = 0; t < frames.length; t++) {
            stats.add(measure(labels.getStack(), t, nZ, frames[t]));
        }
        Map<Integer, List<Map<String, Object>>> shapes = readShapes(dir.resolve(JobFolder.SHAPES), frames,
                threeD ? 3 : 2);

        Calibration cal = input.calibration();
        double pw = cal.pixelWidth;
        double ph = cal.pixelHeight;
        double pd = cal.pixelDepth;
        double[] offset = {input.offsetX(), input.offsetY(), 0};
        double[] scale = {pw, ph, pd};
        Map<Integer, List<DetectedObject>> byFrame = new LinkedHashMap<>();
        int dropped = 0;
        int listed = 0;
        for (int t = 0; t < frames.length; t++) {
            int frame = frames[t];
            Map<Integer, LabelStats> frameStats = stats.get(t);
            List<DetectedObject> objects = new ArrayList<>();
            TreeSet<Integer> seen = new TreeSet<>();
            for (Map<String, Object> o : shapes.get(frame)) {
                String where = "shapes.json, frame " + frame;
                int label;
                double quality;
                try {
                    label = (int) Json.integer(o, "label", where);
                    where += ", label " + label;
                    quality = Json.number(o, "quality", where);
                } catch (Json.JsonException e) {
                    throw output(e.getMessage());
                }
                if (!seen.add(label)) {
                    throw output("shapes.json lists label " + label + " twice in frame " + frame);
                }
                LabelStats s = frameStats.get(label);
                if (s == null) {
                    throw output("shapes.json lists label " + label + " in frame " + frame
                            + " but labels.tif has no such label in that frame");
                }
                double x = (s.sumX / s.n + offset[0]) * pw;
                double y = (s.sumY / s.n + offset[1]) * ph;
                if (!threeD) {
                    double[][] poly;
                    try {
                        poly = polygon(o, where);
                    } catch (Json.JsonException e) {
                        throw output(e.getMessage());
                    }
                    if (poly == null) {
                        dropped++;
                        continue;
                    }
                    for (int i = 0; i < poly[0].length; i++) {
                        poly[0][i] = (poly[0][i] + offset[0] - 0.5) * pw;
                        poly[1][i] = (poly[1][i] + offset[1] - 0.5) * ph;
                    }
                    double area = s.n * pw * ph;
                    objects.add(new DetectedObject(frame, label, x, y, 0, s.n, area, Math.sqrt(area / Math.PI),
                            quality, poly[0], poly[1], null, false));
                } else {
                    double z = (s.sumZ / s.n) * pd;
                    double volume = s.n * pw * ph * pd;
                    Mesh mesh = null;
                    Object meshPath = o.get("mesh");
                    if (meshPath != null) {
                        mesh = readMesh(dir, meshPath, where).toPhysical(offset, scale);
                    }
                    objects.add(new DetectedObject(frame, label, x, y, z, s.n, volume,
                            Math.cbrt(3 * volume / (4 * Math.PI)), quality, null, null, mesh, true));
                }
            }
            listed += seen.size();
            TreeSet<Integer> unlisted = new TreeSet<>(frameStats.keySet());
            unlisted.removeAll(seen);
            if (!unlisted.isEmpty()) {
                String which = "label" + (unlisted.size() == 1 ? " " : "s ") + abbreviate(unlisted) + " in frame "
                        + frame;
                if (threeD) {
                    throw output("labels.tif has " + which + " that shapes.json does not list: the outputs are "
                            + "partial or inconsistent");
                }
                // the engine leaves out objects whose outline degenerates (fewer than 3 vertices), as TrackMate does
                dropped += unlisted.size();
                logger.log(BridgeLogger.Level.DEBUG, which + " ha" + (unlisted.size() == 1 ? "s" : "ve")
                        + " no outline in shapes.json and " + (unlisted.size() == 1 ? "is" : "are") + " left out");
            }
            byFrame.put(frame, objects);
        }
        if (dropped > 0) {
            logger.log(BridgeLogger.Level.WARNING, dropped + " object" + (dropped == 1 ? "" : "s")
                    + " left out: outline with fewer than 3 vertices or no area");
        }
        return new Detections(byFrame, dropped, listed, labels);
    }

    private static BridgeException output(String message) {
        return new BridgeException(BridgeException.Kind.OUTPUT, message);
    }

    private static String abbreviate(TreeSet<Integer> labels) {
        List<Integer> l = new ArrayList<>(labels);
        return l.size() <= 10 ? l.toString() : l.subList(0, 10) + " (and " + (l.size() - 10) + " more)";
    }

    // ------------------------------------------------------------------ labels.tif

    private static ImagePlus openLabels(Path file, JobInput input) throws BridgeException {
        if (!Files.isRegularFile(file)) {
            throw output("the engine's label image is missing: no " + file);
        }
        String dir = file.getParent().toString() + java.io.File.separator;
        String name = file.getFileName().toString();
        try {
            FileInfo[] info = new TiffDecoder(dir, name).getTiffInfo();
            if (info == null || info.length == 0) {
                throw output(file + " is not a TIFF image");
            }
        } catch (IOException e) {
            throw new BridgeException(BridgeException.Kind.OUTPUT, file + " cannot be read: " + e.getMessage(), e);
        }
        Opener opener = new Opener();
        opener.setSilentMode(true);
        ImagePlus imp = opener.openImage(dir, name);
        if (imp == null) {
            throw output(file + " cannot be read as an image");
        }
        int nZ = input.nSlices();
        int nT = input.frames().length;
        if (imp.getWidth() != input.width() || imp.getHeight() != input.height()) {
            throw output("labels.tif is " + imp.getWidth() + "x" + imp.getHeight() + " but the input is "
                    + input.width() + "x" + input.height());
        }
        if (imp.getStackSize() != nZ * nT) {
            throw output("labels.tif has " + imp.getStackSize() + " plane" + (imp.getStackSize() == 1 ? "" : "s")
                    + ", expected " + nZ * nT + " (" + nT + " frame" + (nT == 1 ? "" : "s") + " x " + nZ + " Z slice"
                    + (nZ == 1 ? "" : "s") + "): the outputs are partial");
        }
        int bits = imp.getBitDepth();
        if (bits != 8 && bits != 16 && bits != 32) {
            throw output("labels.tif is " + bits + "-bit RGB; a label image is 8-, 16- or 32-bit");
        }
        return imp;
    }

    /** Pixel statistics per label of frame index {@code t} (planes t*nZ .. t*nZ+nZ-1). */
    private static Map<Integer, LabelStats> measure(ImageStack stack, int t, int nZ, int frame) throws BridgeException {
        Map<Integer, LabelStats> stats = new HashMap<>();
        int w = stack.getWidth();
        int h = stack.getHeight();
        for (int z = 0; z < nZ; z++) {
            Object pixels = stack.getPixels(t * nZ + z + 1);
            for (int y = 0; y < h; y++) {
                int row = y * w;
                int x = 0;
                while (x < w) {
                    int label = labelAt(pixels, row + x, frame);
                    int x0 = x;
                    while (x < w && labelAt(pixels, row + x, frame) == label) {
                        x++;
                    }
                    if (label == 0) {
                        continue;
                    }
                    int len = x - x0;
                    LabelStats s = stats.computeIfAbsent(label, k -> new LabelStats());
                    s.n += len;
                    s.sumX += len * (x0 + x - 1) / 2.0;
                    s.sumY += (double) len * y;
                    s.sumZ += (double) len * z;
                }
            }
        }
        return stats;
    }

    private static int labelAt(Object pixels, int i, int frame) throws BridgeException {
        if (pixels instanceof short[]) {
            return ((short[]) pixels)[i] & 0xffff;
        }
        if (pixels instanceof byte[]) {
            return ((byte[]) pixels)[i] & 0xff;
        }
        float f = ((float[]) pixels)[i];
        if (f != Math.rint(f) || f < 0 || f > (1 << 24)) {
            throw output("labels.tif holds " + f + " in frame " + frame + ": label ids are integers from 0 to 2^24");
        }
        return (int) f;
    }

    // ------------------------------------------------------------------ shapes.json

    private static Map<Integer, List<Map<String, Object>>> readShapes(Path file, int[] frames, int ndim)
            throws BridgeException {
        if (!Files.isRegularFile(file)) {
            throw output("the engine's shapes are missing: no " + file);
        }
        Map<String, Object> root;
        try {
            root = Json.parseObject(new String(Files.readAllBytes(file), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new BridgeException(BridgeException.Kind.OUTPUT, "cannot read " + file + ": " + e, e);
        } catch (Json.JsonException e) {
            throw output("shapes.json is not valid JSON (truncated?): " + e.getMessage());
        }
        Map<Integer, List<Map<String, Object>>> byFrame = new LinkedHashMap<>();
        try {
            long version = Json.integer(root, "version", "shapes.json");
            if (version > JobFolder.PROTOCOL_VERSION) {
                throw output("shapes.json has version " + version + "; this bridge reads version "
                        + JobFolder.PROTOCOL_VERSION + ": update the Fiji plugin");
            }
            long fileNdim = Json.integer(root, "ndim", "shapes.json");
            if (fileNdim != ndim) {
                throw output("shapes.json has ndim " + fileNdim + " but the job was " + ndim + "D");
            }
            TreeSet<Integer> requested = new TreeSet<>();
            for (int f : frames) {
                requested.add(f);
            }
            for (Object entry : Json.array(root, "frames", "shapes.json")) {
                Map<String, Object> e = Json.object(entry, "an entry of shapes.json \"frames\"");
                int frame = (int) Json.integer(e, "frame", "shapes.json frame entry");
                if (!requested.contains(frame)) {
                    throw output("shapes.json has frame " + frame + ", which was not requested");
                }
                List<Map<String, Object>> objects = new ArrayList<>();
                for (Object o : Json.array(e, "objects", "shapes.json, frame " + frame)) {
                    objects.add(Json.object(o, "an object of frame " + frame + " in shapes.json"));
                }
                if (byFrame.put(frame, objects) != null) {
                    throw output("shapes.json lists frame " + frame + " twice");
                }
            }
            for (int f : frames) {
                if (!byFrame.containsKey(f)) {
                    throw output("shapes.json has no entry for frame " + f + ": the outputs are partial");
                }
            }
        } catch (Json.JsonException e) {
            throw output(e.getMessage());
        }
        return byFrame;
    }

    /** The polygon as {xs, ys} in pixels, or null when it has fewer than 3 vertices or zero area. */
    private static double[][] polygon(Map<String, Object> o, String where) {
        if (!o.containsKey("polygon")) {
            throw new Json.JsonException(where + ": no \"polygon\" (a 2D object needs one)");
        }
        List<Object> vertices = Json.array(o, "polygon", where);
        int n = vertices.size();
        double[] xs = new double[n];
        double[] ys = new double[n];
        for (int i = 0; i < n; i++) {
            Object v = vertices.get(i);
            if (!(v instanceof List) || ((List<?>) v).size() != 2 || !(((List<?>) v).get(0) instanceof Number)
                    || !(((List<?>) v).get(1) instanceof Number)) {
                throw new Json.JsonException(where + ": polygon vertex " + i + " is not [x, y]");
            }
            xs[i] = ((Number) ((List<?>) v).get(0)).doubleValue();
            ys[i] = ((Number) ((List<?>) v).get(1)).doubleValue();
        }
        if (n < 3 || signedArea(xs, ys) == 0) {
            return null;
        }
        return new double[][] {xs, ys};
    }

    /** Shoelace formula; positive for counter-clockwise in a y-up frame. */
    static double signedArea(double[] xs, double[] ys) {
        double a = 0;
        for (int i = 0, j = xs.length - 1; i < xs.length; j = i++) {
            a += xs[j] * ys[i] - xs[i] * ys[j];
        }
        return a / 2;
    }

    private static Mesh readMesh(Path dir, Object meshPath, String where) throws BridgeException {
        if (!(meshPath instanceof String)) {
            throw output(where + ": \"mesh\" must be a path relative to the job folder");
        }
        Path root = dir.toAbsolutePath().normalize();
        Path file = root.resolve((String) meshPath).normalize();
        if (!file.startsWith(root)) {
            throw output(where + ": mesh path " + meshPath + " leaves the job folder");
        }
        if (!Files.isRegularFile(file)) {
            throw output(where + ": mesh file " + meshPath + " is missing");
        }
        try {
            return PlyReader.read(file);
        } catch (IOException e) {
            throw new BridgeException(BridgeException.Kind.OUTPUT, where + ": " + e.getMessage(), e);
        }
    }
}

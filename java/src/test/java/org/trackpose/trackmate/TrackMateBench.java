package org.trackpose.trackmate;

import static org.trackpose.bridge.DetectorKeys.*;

import fiji.plugin.trackmate.Logger;
import fiji.plugin.trackmate.Model;
import fiji.plugin.trackmate.Settings;
import fiji.plugin.trackmate.TrackMate;
import fiji.plugin.trackmate.tracking.jaqaman.SparseLAPTrackerFactory;
import fiji.plugin.trackmate.util.DetectionPreview;
import ij.IJ;
import ij.ImagePlus;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import net.imglib2.util.Pair;
import org.trackpose.bridge.DetectorKeys;
import org.trackpose.bridge.Json;

/**
 * Benchmark driver, not a test (surefire does not run it): the detector inside the real TrackMate with the real
 * engine. Launched by {@code benchmarks/bench_trackmate.py}, which makes the movie, times the engine alone in the same
 * run and prints the table; each measurement is printed here as one line {@code BENCH {json}}.
 *
 * <pre>
 * TrackMateBench preview MOVIE.tif PYTHON DIAMETER_UM   TrackMate's detection preview (DetectionPreview, the path
 *                                                       TrackMate 8 gives detector panels) on one frame: cold (first
 *                                                       preview: worker start), warm (another frame), threshold-only
 * TrackMateBench process MOVIE.tif PYTHON DIAMETER_UM LINK_UM   TrackMate.process(): detection of every frame with a
 *                                                       fresh engine process (as a run does), all of TrackMate's
 *                                                       analyzers, LAP tracking
 * </pre>
 */
public final class TrackMateBench {

    private TrackMateBench() {
    }

    public static void main(String[] args) {
        System.setProperty("java.awt.headless", "true");
        String mode = args[0];
        ImagePlus imp = IJ.openImage(args[1]);
        if (imp == null) {
            throw new IllegalArgumentException("cannot open " + args[1]);
        }
        Map<String, Object> det = DetectorKeys.defaults(); // the built-in model, default settings
        det.put(KEY_PYTHON_ENV_KIND, ENV_PYTHON);
        det.put(KEY_PYTHON_ENV_PATH, args[2]);
        det.put(KEY_CELL_DIAMETER, Double.parseDouble(args[3]));
        det.put(KEY_USE_GPU, false);
        if ("preview".equals(mode)) {
            preview(imp, det);
        } else if ("process".equals(mode)) {
            process(imp, det, Double.parseDouble(args[4]));
        } else {
            throw new IllegalArgumentException("mode is preview or process, got " + mode);
        }
        System.exit(0); // the engine's shutdown hook stops the preview worker
    }

    private static void report(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i + 1 < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        System.out.println("BENCH " + Json.write(m));
    }

    private static double seconds(long t0) {
        return Math.round((System.nanoTime() - t0) / 1e6) / 1e3;
    }

    /** TrackMate's own preview path; runPreviewDetection is what its Preview button runs (minus drawing). */
    private static final class Preview extends DetectionPreview {
        Preview(Model model, Settings settings, TrackposeDetectorFactory<?> factory, Map<String, Object> det) {
            super(model, settings, factory, () -> det, () -> 0, null, "Quality histogram",
                    fiji.plugin.trackmate.detection.DetectorKeys.KEY_THRESHOLD);
        }

        int run(Settings settings, int frame, TrackposeDetectorFactory<?> factory, Map<String, Object> det) {
            Pair<Model, Double> out = runPreviewDetection(settings, frame, factory, det,
                    fiji.plugin.trackmate.detection.DetectorKeys.KEY_THRESHOLD);
            if (out == null) {
                throw new IllegalStateException("the preview failed (see its log above)");
            }
            return out.getA().getSpots().getNSpots(frame, true);
        }
    }

    private static void preview(ImagePlus imp, Map<String, Object> det) {
        Settings settings = new Settings(imp);
        Model model = new Model();
        // as the configuration panel builds it: a copy of the factory that runs on the persistent worker
        TrackposeDetectorFactory<?> factory = new TrackposeDetectorFactory<>().forPreview();
        Preview preview = new Preview(model, settings, factory, det);
        preview.getLogger(); // the panel's logger receives the detector's log, as in the GUI
        long t0 = System.nanoTime();
        int n = preview.run(settings, 0, factory, det);
        report("what", "preview cold", "frame", 0, "spots", n, "seconds", seconds(t0));
        int frames = imp.getNFrames();
        for (int f = 1; f <= Math.min(3, frames - 1); f++) {
            t0 = System.nanoTime();
            n = preview.run(settings, f, factory, det);
            report("what", "preview warm", "frame", f, "spots", n, "seconds", seconds(t0));
        }
        int last = Math.min(3, frames - 1);
        double[][] thresholds = {{0.5, 0.4}, {-0.5, 0.6}, {0.0, 0.4}};
        for (double[] th : thresholds) {
            Map<String, Object> tuned = new HashMap<>(det);
            tuned.put(KEY_CELL_PROB_THRESHOLD, th[0]);
            tuned.put(KEY_FLOW_THRESHOLD, th[1]);
            t0 = System.nanoTime();
            n = preview.run(settings, last, factory, tuned);
            report("what", "preview threshold-only", "frame", last, "spots", n, "cellprob_threshold", th[0],
                    "flow_threshold", th[1], "seconds", seconds(t0));
        }
        EngineWorkers.closeAll();
    }

    private static void process(ImagePlus imp, Map<String, Object> det, double linkDistance) {
        Settings s = new Settings(imp);
        s.detectorFactory = new TrackposeDetectorFactory<>();
        s.detectorSettings = det;
        s.addAllAnalyzers(); // as the GUI does
        s.trackerFactory = new SparseLAPTrackerFactory();
        Map<String, Object> lap = s.trackerFactory.getDefaultSettings();
        lap.put("LINKING_MAX_DISTANCE", linkDistance);
        lap.put("GAP_CLOSING_MAX_DISTANCE", linkDistance);
        s.trackerSettings = lap;
        Model model = new Model();
        long[] detected = {0};
        model.setLogger(new Logger() { // the detector's last line ("trackpose: N objects in M frames.") ends detection
            @Override
            public void log(String message, java.awt.Color color) {
                if (message.trim().matches("trackpose: \\d+ objects? in \\d+ frames?.*")) {
                    detected[0] = System.nanoTime();
                }
            }

            @Override
            public void error(String message) {
                System.err.println(message);
            }

            @Override
            public void setProgress(double val) {
            }

            @Override
            public void setStatus(String status) {
            }
        });
        TrackMate tm = new TrackMate(model, s);
        tm.setNumThreads(Runtime.getRuntime().availableProcessors());
        if (!tm.checkInput()) {
            throw new IllegalStateException(tm.getErrorMessage());
        }
        long t0 = System.nanoTime();
        boolean ok = tm.process();
        double detection = detected[0] == 0 ? -1 : Math.round((detected[0] - t0) / 1e6) / 1e3;
        double total = seconds(t0);
        if (!ok) {
            throw new IllegalStateException(tm.getErrorMessage());
        }
        report("what", "process", "frames", imp.getNFrames(), "width", imp.getWidth(), "height", imp.getHeight(),
                "spots", model.getSpots().getNSpots(false), "tracks", model.getTrackModel().nTracks(false),
                "detection_seconds", detection, "seconds", total);
        System.out.println(String.format(Locale.ROOT, "TrackMate.process(): %.1f s", total));
    }
}

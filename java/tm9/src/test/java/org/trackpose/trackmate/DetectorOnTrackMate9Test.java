package org.trackpose.trackmate;

import static org.junit.jupiter.api.Assertions.*;
import static org.trackpose.bridge.DetectorKeys.*;

import fiji.plugin.trackmate.Model;
import fiji.plugin.trackmate.Settings;
import fiji.plugin.trackmate.Spot;
import fiji.plugin.trackmate.SpotMesh;
import fiji.plugin.trackmate.SpotRoi;
import fiji.plugin.trackmate.TrackMate;
import fiji.plugin.trackmate.features.spot.Spot2DShapeAnalyzerFactory;
import fiji.plugin.trackmate.features.spot.Spot3DFitEllipsoidAnalyzerFactory;
import fiji.plugin.trackmate.features.spot.Spot3DShapeAnalyzerFactory;
import fiji.plugin.trackmate.io.TmXmlReader;
import fiji.plugin.trackmate.io.TmXmlWriter;
import fiji.plugin.trackmate.tracking.jaqaman.SparseLAPTrackerFactory;
import fiji.plugin.trackmate.tracking.overlap.OverlapTrackerFactory;
import ij.ImagePlus;
import ij.ImageStack;
import ij.gui.Roi;
import ij.process.ShortProcessor;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import net.imglib2.mesh.Mesh;
import net.imglib2.mesh.Triangles;
import net.imglib2.mesh.Vertices;
import net.imglib2.mesh.io.ply.PLYMeshIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.trackpose.bridge.DetectorKeys;

/**
 * The plugin jar (compiled against TrackMate 8.1.6) inside the real TrackMate 9 ({@code TrackMate.process()}:
 * detection, TrackMate 9's feature analyzers, tracking; {@code TmXmlWriter} / {@code TmXmlReader}).
 *
 * <ul>
 * <li>2D: {@link LabelEngine} (the input is the label image; outlines are the labels' boxes) on a cropped movie of
 * moving rectangles: TrackMate 9 outline spots ({@code SpotRoi}) at the labels, TrackMate 9's 2D shape analyzers,
 * the overlap tracker, ROIs through the XML files.</li>
 * <li>3D: the engine's own job code with the input as labels ({@link TrackMate9Engines#labels()}: shapes.json and the
 * surface meshes of {@code trackpose.meshes.surfaces} with the default settings) on a Z-cropped movie of a ball and
 * an ellipsoid of known size with anisotropic voxels: {@code SpotMesh} spots whose meshes are the engine's PLY files
 * in calibrated coordinates, TrackMate 9's 3D analyzers (volume, surface area, sphericity, ellipsoid fit) against
 * the analytic shapes, the LAP tracker, meshes through {@code <xml>.meshes}.</li>
 * </ul>
 */
class DetectorOnTrackMate9Test {

    @TempDir
    Path tmp;

    private static Map<String, Object> detectorSettings() {
        Map<String, Object> s = DetectorKeys.defaults();
        s.put(KEY_USE_GPU, false);
        s.put(KEY_CELL_DIAMETER, 10.0);
        return s;
    }

    private Settings trackMateSettings(ImagePlus imp, TrackposeDetectorFactory<?> factory, Map<String, Object> det) {
        Settings s = new Settings(imp);
        s.detectorFactory = factory;
        s.detectorSettings = det;
        s.addAllAnalyzers(); // after the factory: TrackMate 9 adds the 2D / 3D shape analyzers when it has shapes
        return s;
    }

    /** {@code n} tracks, each with one spot in every one of the {@code frames} frames. */
    private static void assertTracks(Model model, int n, int frames, String what) {
        assertEquals(n, model.getTrackModel().nTracks(true), what);
        for (Integer id : model.getTrackModel().trackIDs(true)) {
            TreeSet<Integer> seen = new TreeSet<>();
            model.getTrackModel().trackSpots(id).forEach(sp -> seen.add(sp.getFeature(Spot.FRAME).intValue()));
            assertEquals(frames, model.getTrackModel().trackSpots(id).size(), what);
            assertEquals(frames, seen.size(), what + ": one spot per frame");
        }
    }

    /** Saves the model and settings with TrackMate's writer and opens the file with its reader. */
    private static TmXmlReader writeAndOpen(File xml, Model model, Settings settings) throws Exception {
        TmXmlWriter writer = new TmXmlWriter(xml);
        writer.appendModel(model);
        writer.appendSettings(settings);
        writer.writeToFile();
        TmXmlReader reader = new TmXmlReader(xml);
        assertTrue(reader.isReadingOk(), reader.getErrorMessage());
        return reader;
    }

    private static Spot nearest(Iterable<Spot> spots, double x, double y, double z) {
        Spot best = null;
        double bestD = Double.POSITIVE_INFINITY;
        for (Spot s : spots) {
            double dx = s.getFeature(Spot.POSITION_X) - x;
            double dy = s.getFeature(Spot.POSITION_Y) - y;
            double dz = s.getFeature(Spot.POSITION_Z) - z;
            double d = Math.sqrt(dx * dx + dy * dy + dz * dz);
            if (d < bestD) {
                bestD = d;
                best = s;
            }
        }
        return best;
    }

    // ------------------------------------------------------------------------------------------ 2D

    @Test
    void a2DMovieGivesOutlineSpotsThatTrackMate9MeasuresTracksAndSaves() throws Exception {
        double pw = 0.5;
        int frames = 3;
        ImagePlus movie = TestImages.blank(48, 40, 1, 1, frames, pw, 1);
        for (int t = 0; t < frames; t++) {
            TestImages.box(movie, 0, 0, t, 6 + t, 5, 16 + t, 13, 1); // 10 x 8 px, one pixel right per frame
            TestImages.box(movie, 0, 0, t, 25, 20 + t, 31, 32 + t, 2); // 6 x 12 px, one pixel down per frame
        }
        TestImages.box(movie, 0, 0, 0, 44, 36, 47, 39, 3); // outside the ROI: never sent
        movie.setTitle("rectangles");
        Settings s = trackMateSettings(movie, new TrackposeDetectorFactory<>().engineCommand(
                LabelEngine.command("labels")).tempRoot(tmp), detectorSettings());
        s.setRoi(new Roi(2, 1, 39, 35)); // x 2..40, y 1..35: only that box is sent
        s.trackerFactory = new OverlapTrackerFactory();
        s.trackerSettings = s.trackerFactory.getDefaultSettings();
        assertTrue(s.getSpotAnalyzerFactories().stream().anyMatch(f -> f instanceof Spot2DShapeAnalyzerFactory),
                "TrackMate 9 adds its 2D shape analyzers for a detector with 2D shapes");
        Model model = new Model();
        TrackMate tm = new TrackMate(model, s);
        assertTrue(tm.checkInput(), tm.getErrorMessage());
        assertTrue(tm.process(), tm.getErrorMessage());

        int[][] boxes = {{6, 5, 16, 13}, {25, 20, 31, 32}}; // frame 0; x0, y0, x1, y1 (exclusive)
        int[][] motion = {{1, 0}, {0, 1}};
        for (int t = 0; t < frames; t++) {
            assertEquals(2, model.getSpots().getNSpots(t, false), "frame " + t);
            for (int k = 0; k < 2; k++) {
                double x0 = boxes[k][0] + motion[k][0] * t;
                double y0 = boxes[k][1] + motion[k][1] * t;
                double x1 = boxes[k][2] + motion[k][0] * t;
                double y1 = boxes[k][3] + motion[k][1] * t;
                double cx = (x0 + x1 - 1) / 2 * pw; // TrackMate: the centre of pixel i is at i * calibration
                double cy = (y0 + y1 - 1) / 2 * pw;
                Spot spot = nearest(model.getSpots().iterable(t, false), cx, cy, 0);
                String what = "label " + (k + 1) + ", frame " + t + ": " + spot;
                SpotRoi roi = assertInstanceOf(SpotRoi.class, spot, what);
                assertEquals(cx, roi.getDoublePosition(0), 1e-9, what);
                assertEquals(cy, roi.getDoublePosition(1), 1e-9, what);
                assertEquals(0.0, roi.getDoublePosition(2), 0, what);
                double area = (x1 - x0) * (y1 - y0) * pw * pw;
                assertEquals(Math.sqrt(area / Math.PI), spot.getFeature(Spot.RADIUS), 1e-9, what);
                assertEquals((k + 1) / 100.0, spot.getFeature(Spot.QUALITY), 1e-12, what);
                // the outline runs along the pixel edges, half a pixel from the centres, in absolute coordinates
                TreeSet<Double> xs = new TreeSet<>();
                TreeSet<Double> ys = new TreeSet<>();
                for (int i = 0; i < roi.nPoints(); i++) {
                    xs.add(Math.rint(roi.x(i) * 1e9) / 1e9);
                    ys.add(Math.rint(roi.y(i) * 1e9) / 1e9);
                }
                assertEquals(new TreeSet<>(Arrays.asList((x0 - 0.5) * pw, (x1 - 0.5) * pw)), xs, what);
                assertEquals(new TreeSet<>(Arrays.asList((y0 - 0.5) * pw, (y1 - 0.5) * pw)), ys, what);
                // TrackMate 9's 2D shape analyzer on our outline
                assertEquals(area, spot.getFeature(Spot2DShapeAnalyzerFactory.AREA), 1e-9, what);
                assertEquals(2 * (x1 - x0 + y1 - y0) * pw, spot.getFeature(Spot2DShapeAnalyzerFactory.PERIMETER),
                        1e-9, what);
            }
        }
        assertTracks(model, 2, frames, "the overlap tracker follows each rectangle");

        File xml = tmp.resolve("rectangles.xml").toFile();
        TmXmlReader reader = writeAndOpen(xml, model, s);
        Settings read = reader.readSettings(movie);
        assertTrue(reader.isReadingOk(), reader.getErrorMessage());
        assertInstanceOf(TrackposeDetectorFactory.class, read.detectorFactory,
                "TrackMate 9 finds the detector by its key (the jar's plugin index)");
        assertEquals(s.detectorSettings, read.detectorSettings);
        Model back = reader.getModel();
        assertEquals(2 * frames, back.getSpots().getNSpots(false));
        assertEquals(2, back.getTrackModel().nTracks(false));
        for (Spot spot : back.getSpots().iterable(false)) {
            SpotRoi before = byId(model, spot.ID());
            SpotRoi after = assertInstanceOf(SpotRoi.class, spot, "the outline survives the XML files");
            assertEquals(before.nPoints(), after.nPoints());
            for (int i = 0; i < after.nPoints(); i++) {
                assertEquals(before.x(i), after.x(i), 1e-9);
                assertEquals(before.y(i), after.y(i), 1e-9);
            }
        }
    }

    @SuppressWarnings("unchecked")
    private static <S extends Spot> S byId(Model model, int id) {
        for (Spot s : model.getSpots().iterable(false)) {
            if (s.ID() == id) {
                return (S) s;
            }
        }
        throw new AssertionError("no spot " + id);
    }

    // ------------------------------------------------------------------------------------------ 3D

    /** An ellipsoid (semi-axes a, b, c along X, Y, Z; micron) whose centre moves by dx micron per frame. */
    static final class Ellipsoid {
        final int label;
        final double x;
        final double y;
        final double z;
        final double a;
        final double b;
        final double c;
        final double dx;

        Ellipsoid(int label, double x, double y, double z, double a, double b, double c, double dx) {
            this.label = label;
            this.x = x;
            this.y = y;
            this.z = z;
            this.a = a;
            this.b = b;
            this.c = c;
            this.dx = dx;
        }

        double volume() {
            return 4.0 / 3.0 * Math.PI * a * b * c;
        }

        /** Surface area by quadrature of the parametric surface (accurate to ~1e-6 here). */
        double area() {
            int n = 800;
            double sum = 0;
            double dt = Math.PI / n;
            double dp = 2 * Math.PI / (2 * n);
            for (int i = 0; i < n; i++) {
                double t = (i + 0.5) * dt;
                double st = Math.sin(t);
                double ct = Math.cos(t);
                for (int j = 0; j < 2 * n; j++) {
                    double p = (j + 0.5) * dp;
                    double u = b * c * st * st * Math.cos(p);
                    double v = a * c * st * st * Math.sin(p);
                    double w = a * b * st * ct;
                    sum += Math.sqrt(u * u + v * v + w * w);
                }
            }
            return sum * dt * dp;
        }

        double sphericity() {
            return Math.cbrt(Math.PI) * Math.pow(6 * volume(), 2.0 / 3.0) / area();
        }

        /** The centroid of the object's voxels in a frame (micron). */
        double[] voxelCentroid(int frame, double pw, double pd, int w, int h, int nz) {
            double[] sum = new double[3];
            long n = 0;
            for (int k = 0; k < nz; k++) {
                for (int j = 0; j < h; j++) {
                    for (int i = 0; i < w; i++) {
                        if (contains(i, j, k, frame, pw, pd)) {
                            sum[0] += i * pw;
                            sum[1] += j * pw;
                            sum[2] += k * pd;
                            n++;
                        }
                    }
                }
            }
            return new double[] {sum[0] / n, sum[1] / n, sum[2] / n};
        }

        /** Voxel (i, j, k)'s centre is at (i pw, j pw, k pd) (TrackMate's convention). */
        boolean contains(int i, int j, int k, int frame, double pw, double pd) {
            double u = (i * pw - x - dx * frame) / a;
            double v = (j * pw - y) / b;
            double w = (k * pd - z) / c;
            return u * u + v * v + w * w <= 1;
        }
    }

    /** A 16-bit label movie (pixel value = label) of the ellipsoids, calibrated (pw, pw, pd; micron). */
    static ImagePlus labelMovie(List<Ellipsoid> objects, int w, int h, int nz, int frames, double pw, double pd) {
        ImageStack stack = new ImageStack(w, h);
        for (int t = 0; t < frames; t++) {
            for (int k = 0; k < nz; k++) {
                ShortProcessor ip = new ShortProcessor(w, h);
                for (int j = 0; j < h; j++) {
                    for (int i = 0; i < w; i++) {
                        for (Ellipsoid e : objects) {
                            if (e.contains(i, j, k, t, pw, pd)) {
                                ip.set(i, j, e.label);
                            }
                        }
                    }
                }
                stack.addSlice(ip);
            }
        }
        return TestImages.hyperstack("ellipsoids", stack, 1, nz, frames, pw, pd);
    }

    @Test
    void a3DMovieGivesMeshSpotsThatTrackMate9MeasuresTracksAndSaves() throws Exception {
        double pw = 0.5;
        double pd = 1.0; // anisotropy 2
        int frames = 3;
        List<Ellipsoid> objects = Arrays.asList(
                new Ellipsoid(1, 8.1, 10.3, 7.2, 4.0, 4.0, 4.0, 1.0), // a ball of radius 4 micron (8 px, 4 planes)
                new Ellipsoid(2, 20.2, 12.1, 6.7, 5.0, 3.5, 3.0, -1.0)); // semi-axes 10, 7, 3 voxels
        int zCrop = 2; // TrackMate sends planes 2..13 only: the engine's meshes get the crop's Z back
        ImagePlus movie = labelMovie(objects, 64, 48, 14, frames, pw, pd);
        Map<String, Object> det = detectorSettings();
        det.put(KEY_MODE_3D, true);
        det.put(KEY_KEEP_TEMP_FOLDER, true); // to compare the spots' meshes with the engine's files
        Settings s = trackMateSettings(movie, new TrackposeDetectorFactory<>().engineCommand(
                TrackMate9Engines.labels()).tempRoot(tmp), det);
        s.zstart = zCrop;
        s.zend = 13;
        s.trackerFactory = new SparseLAPTrackerFactory();
        s.trackerSettings = s.trackerFactory.getDefaultSettings();
        s.trackerSettings.put("LINKING_MAX_DISTANCE", 3.0);
        s.trackerSettings.put("GAP_CLOSING_MAX_DISTANCE", 3.0);
        assertTrue(s.getSpotAnalyzerFactories().stream().anyMatch(f -> f instanceof Spot3DShapeAnalyzerFactory),
                "TrackMate 9 adds its 3D shape analyzers for our detector (has3Dsegmentation)");
        assertTrue(s.getSpotAnalyzerFactories().stream().anyMatch(f -> f instanceof Spot3DFitEllipsoidAnalyzerFactory));
        Model model = new Model();
        TrackMate tm = new TrackMate(model, s);
        assertTrue(tm.checkInput(), tm.getErrorMessage());
        assertTrue(tm.process(), tm.getErrorMessage());

        Path job;
        try (Stream<Path> kept = Files.list(tmp)) {
            List<Path> dirs = kept.filter(Files::isDirectory).collect(Collectors.toList());
            assertEquals(1, dirs.size(), "the kept job folder: " + dirs);
            job = dirs.get(0);
        }
        for (int t = 0; t < frames; t++) {
            assertEquals(objects.size(), model.getSpots().getNSpots(t, false), "frame " + t);
            for (Ellipsoid e : objects) {
                Spot spot = nearest(model.getSpots().iterable(t, false), e.x + e.dx * t, e.y, e.z);
                String what = "label " + e.label + ", frame " + t + " (spot " + spot.ID() + ")";
                SpotMesh sm = assertInstanceOf(SpotMesh.class, spot, what);
                // TrackMate 9 puts a mesh spot at the mean of its vertices: near the object's voxel centroid
                double[] c = e.voxelCentroid(t, pw, pd, movie.getWidth(), movie.getHeight(), movie.getNSlices());
                assertEquals(c[0], sm.getDoublePosition(0), 0.5 * pw, what + " x");
                assertEquals(c[1], sm.getDoublePosition(1), 0.5 * pw, what + " y");
                assertEquals(c[2], sm.getDoublePosition(2), 0.5 * pd, what + " z");

                // the spot's mesh is the engine's surface (meshes/<frame>_<label>.ply, vertices in pixel-corner
                // units of the sent crop) in calibrated coordinates
                Mesh ply = PLYMeshIO.open(job.resolve("meshes").resolve(t + "_" + e.label + ".ply").toString());
                Vertices pv = ply.vertices();
                Vertices sv = sm.getMesh().vertices();
                assertEquals(pv.sizel(), sv.sizel(), what);
                assertEquals(ply.triangles().sizel(), sm.getMesh().triangles().sizel(), what);
                for (long i = 0; i < pv.sizel(); i++) {
                    assertEquals((pv.x(i) - 0.5) * pw, sm.getDoublePosition(0) + sv.x(i), 1e-4, what + " x " + i);
                    assertEquals((pv.y(i) - 0.5) * pw, sm.getDoublePosition(1) + sv.y(i), 1e-4, what + " y " + i);
                    assertEquals((pv.z(i) + zCrop - 0.5) * pd, sm.getDoublePosition(2) + sv.z(i), 1e-4,
                            what + " z " + i);
                }
                Triangles pt = ply.triangles();
                Triangles st = sm.getMesh().triangles();
                for (long i = 0; i < pt.sizel(); i++) {
                    assertEquals(pt.vertex0(i), st.vertex0(i), what);
                    assertEquals(pt.vertex1(i), st.vertex1(i), what);
                    assertEquals(pt.vertex2(i), st.vertex2(i), what);
                }

                // TrackMate 9's 3D analyzers against the analytic shape
                double volume = spot.getFeature(Spot3DShapeAnalyzerFactory.VOLUME);
                double area = spot.getFeature(Spot3DShapeAnalyzerFactory.SURFACE_AREA);
                double sphericity = spot.getFeature(Spot3DShapeAnalyzerFactory.SPHERICITY);
                System.out.printf(java.util.Locale.ROOT, "%s: volume %.4f (%.4f), area %.4f (%.4f), sphericity %.4f (%.4f), ellipsoid "
                        + "%.3f %.3f %.3f%n", what, volume, e.volume(), area, e.area(), sphericity, e.sphericity(),
                        spot.getFeature(Spot3DFitEllipsoidAnalyzerFactory.MAJOR),
                        spot.getFeature(Spot3DFitEllipsoidAnalyzerFactory.MEDIAN),
                        spot.getFeature(Spot3DFitEllipsoidAnalyzerFactory.MINOR));
                assertEquals(e.volume(), volume, 0.03 * e.volume(), what + ": VOLUME");
                assertEquals(e.sphericity(), sphericity, 0.03, what + ": SPHERICITY");
                assertEquals(e.area(), area, 0.03 * e.area(), what + ": SURFACE_AREA");
                double[] axes = {e.a, e.b, e.c};
                Arrays.sort(axes);
                assertEquals(axes[2], spot.getFeature(Spot3DFitEllipsoidAnalyzerFactory.MAJOR), 0.1 * axes[2],
                        what + ": ellipsoid major semi-axis");
                assertEquals(axes[1], spot.getFeature(Spot3DFitEllipsoidAnalyzerFactory.MEDIAN), 0.1 * axes[1],
                        what + ": ellipsoid median semi-axis");
                assertEquals(axes[0], spot.getFeature(Spot3DFitEllipsoidAnalyzerFactory.MINOR), 0.1 * axes[0],
                        what + ": ellipsoid minor semi-axis");
            }
        }
        assertTracks(model, objects.size(), frames, "the LAP tracker follows each object");

        // TmXmlWriter writes the meshes beside the XML file; TmXmlReader gives them back
        File xml = tmp.resolve("ellipsoids.xml").toFile();
        TmXmlReader reader = writeAndOpen(xml, model, s);
        assertTrue(new File(xml.getPath() + ".meshes").isFile(), "TrackMate 9 writes <xml>.meshes");
        Model back = reader.getModel();
        assertTrue(reader.isReadingOk(), reader.getErrorMessage());
        Settings read = reader.readSettings(movie);
        assertInstanceOf(TrackposeDetectorFactory.class, read.detectorFactory);
        assertEquals(s.detectorSettings, read.detectorSettings);
        assertEquals(objects.size() * frames, back.getSpots().getNSpots(false));
        assertEquals(objects.size(), back.getTrackModel().nTracks(false));
        Map<Integer, Spot> before = new HashMap<>();
        model.getSpots().iterable(false).forEach(sp -> before.put(sp.ID(), sp));
        for (Spot spot : back.getSpots().iterable(false)) {
            SpotMesh a = (SpotMesh) before.get(spot.ID());
            SpotMesh b = assertInstanceOf(SpotMesh.class, spot, "a mesh spot survives the XML files");
            for (int d = 0; d < 3; d++) {
                assertEquals(a.getDoublePosition(d), b.getDoublePosition(d), 1e-4);
            }
            Vertices va = a.getMesh().vertices();
            Vertices vb = b.getMesh().vertices();
            assertEquals(va.sizel(), vb.sizel());
            for (long i = 0; i < va.sizel(); i++) {
                assertEquals(a.getDoublePosition(0) + va.x(i), b.getDoublePosition(0) + vb.x(i), 1e-4);
                assertEquals(a.getDoublePosition(1) + va.y(i), b.getDoublePosition(1) + vb.y(i), 1e-4);
                assertEquals(a.getDoublePosition(2) + va.z(i), b.getDoublePosition(2) + vb.z(i), 1e-4);
            }
            Triangles ta = a.getMesh().triangles();
            Triangles tb = b.getMesh().triangles();
            assertEquals(ta.sizel(), tb.sizel());
            for (long i = 0; i < ta.sizel(); i++) {
                assertEquals(ta.vertex0(i), tb.vertex0(i));
                assertEquals(ta.vertex1(i), tb.vertex1(i));
                assertEquals(ta.vertex2(i), tb.vertex2(i));
            }
            assertEquals(a.getFeature(Spot3DShapeAnalyzerFactory.VOLUME),
                    b.getFeature(Spot3DShapeAnalyzerFactory.VOLUME), 1e-6);
        }
    }
}

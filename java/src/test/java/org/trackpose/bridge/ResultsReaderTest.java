package org.trackpose.bridge;

import static org.junit.jupiter.api.Assertions.*;

import ij.ImagePlus;
import ij.ImageStack;
import ij.measure.Calibration;
import ij.process.FloatProcessor;
import ij.process.ImageProcessor;
import ij.process.ShortProcessor;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reading a job's outputs. The fixture: a 12 x 10 crop taken at (10, 20) from a movie with 0.5 x 0.25 micron
 * pixels (anisotropic on purpose, so that a swapped axis shows), frames 5 and 7 sent.
 * Frame 5: label 1 = rectangle x in [2, 6), y in [3, 8) (20 pixels); label 3 = pixel (9, 1) with a degenerate
 * polygon. Frame 7: label 2 = square x in [0, 2), y in [0, 2).
 */
class ResultsReaderTest {

    @TempDir
    Path dir;

    private JobInput input;

    static final String RECT = "[[2,3],[2,8],[6,8],[6,3]]";
    static final String SQUARE = "[[0,0],[0,2],[2,2],[2,0]]";

    @BeforeEach
    void makeInput() {
        ImageStack s = new ImageStack(12, 10);
        s.addSlice(new ShortProcessor(12, 10));
        s.addSlice(new ShortProcessor(12, 10));
        ImagePlus image = new ImagePlus("in", s);
        image.setDimensions(1, 1, 2);
        Calibration cal = image.getCalibration();
        cal.pixelWidth = 0.5;
        cal.pixelHeight = 0.25;
        cal.setUnit("micron");
        input = JobInput.of(image, new int[] {5, 7}, 10, 20);
    }

    private void writeLabels(ImageProcessor... planes) throws Exception {
        writeLabels(1, planes);
    }

    private void writeLabels(int nZ, ImageProcessor... planes) throws Exception {
        ImageStack stack = new ImageStack(planes[0].getWidth(), planes[0].getHeight());
        for (ImageProcessor p : planes) {
            stack.addSlice(p);
        }
        ImagePlus labels = new ImagePlus("labels", stack);
        labels.setDimensions(1, nZ, planes.length / nZ);
        JobFolder.writeTiff(labels, dir.resolve("labels.tif"));
    }

    private ImageProcessor frame5(ImageProcessor p) {
        for (int y = 3; y < 8; y++) {
            for (int x = 2; x < 6; x++) {
                p.putPixelValue(x, y, 1);
            }
        }
        p.putPixelValue(9, 1, 3);
        return p;
    }

    private ImageProcessor frame7(ImageProcessor p) {
        for (int y = 0; y < 2; y++) {
            for (int x = 0; x < 2; x++) {
                p.putPixelValue(x, y, 2);
            }
        }
        return p;
    }

    private void writeShapes(String json) throws Exception {
        Files.write(dir.resolve("shapes.json"), json.getBytes(StandardCharsets.UTF_8));
    }

    private static String shapes(String frame5Objects, String frame7Objects) {
        return "{\"version\": 1, \"ndim\": 2, \"calibration\": {\"x\": 0.5, \"y\": 0.25, \"z\": 1, \"unit\": \"micron\"},"
                + " \"frames\": [{\"frame\": 5, \"objects\": [" + frame5Objects + "]},"
                + " {\"frame\": 7, \"objects\": [" + frame7Objects + "]}]}";
    }

    private static String obj(int label, String polygon, double quality) {
        return "{\"label\": " + label + ", \"centroid\": [0, 0], \"area\": 1, \"bbox\": [0, 0, 1, 1], \"radius\": 1, "
                + "\"quality\": " + quality + ", \"polygon\": " + polygon + "}";
    }

    private void writeGoodFixture() throws Exception {
        writeLabels(frame5(new ShortProcessor(12, 10)), frame7(new ShortProcessor(12, 10)));
        writeShapes(shapes(obj(1, RECT, 0.9) + ", " + obj(3, "[[9,1],[10,1]]", 0.5), obj(2, SQUARE, 0.75)));
    }

    @Test
    void objectsAreInPhysicalUnitsWithCalibrationAndRoiOffset() throws Exception {
        writeGoodFixture();
        EngineEventTest.RecordingLogger log = new EngineEventTest.RecordingLogger();
        Detections d = ResultsReader.read(dir, input, log);
        assertEquals(List.of(5, 7), d.frames());
        assertEquals(2, d.count());
        assertEquals(1, d.dropped(), "the 2-vertex polygon is left out");
        assertTrue(log.snapshot().contains("WARNING 1 object left out: outline with fewer than 3 vertices or no area"),
                log.snapshot().toString());
        assertEquals(3, d.listed(), "what the engine counts");

        DetectedObject rect = d.objects(5).get(0);
        assertEquals(1, rect.label());
        assertEquals(5, rect.frame());
        assertFalse(rect.is3D());
        // centroid: pixel centres x 2..5 -> 3.5, y 3..7 -> 5; plus offset (10, 20); times (0.5, 0.25)
        assertEquals(6.75, rect.x(), 1e-12);
        assertEquals(6.25, rect.y(), 1e-12);
        assertEquals(0.0, rect.z());
        assertEquals(20, rect.pixelCount());
        assertEquals(20 * 0.5 * 0.25, rect.size(), 1e-12);
        assertEquals(Math.sqrt(2.5 / Math.PI), rect.radius(), 1e-12);
        assertEquals(0.9, rect.quality());
        // vertices on pixel corners: (corner + offset - 0.5) * calibration, TrackMate's convention
        assertArrayEquals(new double[] {5.75, 5.75, 7.75, 7.75}, rect.polygonX(), 1e-12);
        assertArrayEquals(new double[] {5.625, 6.875, 6.875, 5.625}, rect.polygonY(), 1e-12);
        assertNull(rect.mesh());

        DetectedObject square = d.objects(7).get(0);
        assertEquals(2, square.label());
        assertEquals((0.5 + 10) * 0.5, square.x(), 1e-12);
        assertEquals((0.5 + 20) * 0.25, square.y(), 1e-12);
        assertEquals(4 * 0.125, square.size(), 1e-12);
        assertEquals(Math.sqrt(0.5 / Math.PI), square.radius(), 1e-12);
        assertArrayEquals(new double[] {4.75, 4.75, 5.75, 5.75}, square.polygonX(), 1e-12);
        assertEquals(0.75, square.quality());

        assertEquals(2, d.all().size());
        assertNotNull(d.labels());
        assertThrows(IllegalArgumentException.class, () -> d.objects(6));
    }

    @Test
    void polygonCentroidMatchesLabelCentroid() throws Exception {
        writeGoodFixture();
        DetectedObject rect = ResultsReader.read(dir, input, null).objects(5).get(0);
        double[] xs = rect.polygonX();
        double[] ys = rect.polygonY();
        double cx = 0;
        double cy = 0;
        for (int i = 0; i < xs.length; i++) {
            cx += xs[i] / xs.length;
            cy += ys[i] / ys.length;
        }
        assertEquals(rect.x(), cx, 1e-12);
        assertEquals(rect.y(), cy, 1e-12);
        assertEquals(rect.size(), Math.abs(ResultsReader.signedArea(xs, ys)), 1e-12);
    }

    @Test
    void aFrameWithNothingIsAnEmptyListNotAnError() throws Exception {
        writeLabels(frame5(new ShortProcessor(12, 10)), new ShortProcessor(12, 10));
        writeShapes(shapes(obj(1, RECT, 0.9) + ", " + obj(3, "[[9,1],[10,1]]", 0.5), ""));
        Detections d = ResultsReader.read(dir, input, null);
        assertTrue(d.objects(7).isEmpty());
        assertEquals(1, d.objects(5).size());
    }

    @Test
    void float32LabelsAreRead() throws Exception {
        writeLabels(frame5(new FloatProcessor(12, 10)), frame7(new FloatProcessor(12, 10)));
        writeShapes(shapes(obj(1, RECT, 0.9) + ", " + obj(3, "[[9,1],[10,1]]", 0.5), obj(2, SQUARE, 0.75)));
        assertEquals(2, ResultsReader.read(dir, input, null).count());
    }

    private BridgeException failure() {
        BridgeException e = assertThrows(BridgeException.class, () -> ResultsReader.read(dir, input, null));
        assertEquals(BridgeException.Kind.OUTPUT, e.kind());
        return e;
    }

    @Test
    void missingLabelsIsAnError() throws Exception {
        writeShapes(shapes("", ""));
        assertTrue(failure().getMessage().startsWith("the engine's label image is missing"));
    }

    @Test
    void unreadableLabelsIsAnError() throws Exception {
        Files.write(dir.resolve("labels.tif"), "not a tiff".getBytes(StandardCharsets.UTF_8));
        writeShapes(shapes("", ""));
        assertTrue(failure().getMessage().contains("labels.tif"));
    }

    @Test
    void missingShapesIsAnError() throws Exception {
        writeLabels(frame5(new ShortProcessor(12, 10)), frame7(new ShortProcessor(12, 10)));
        assertTrue(failure().getMessage().startsWith("the engine's shapes are missing"));
    }

    @Test
    void partialLabelsAreAnError() throws Exception {
        writeLabels(frame5(new ShortProcessor(12, 10)));
        writeShapes(shapes(obj(1, RECT, 0.9), ""));
        assertEquals("labels.tif has 1 plane, expected 2 (2 frames x 1 Z slice): the outputs are partial",
                failure().getMessage());
    }

    @Test
    void wrongGeometryIsAnError() throws Exception {
        writeLabels(new ShortProcessor(10, 12), new ShortProcessor(10, 12));
        writeShapes(shapes("", ""));
        assertEquals("labels.tif is 10x12 but the input is 12x10", failure().getMessage());
    }

    @Test
    void missingFrameInShapesIsAnError() throws Exception {
        writeLabels(frame5(new ShortProcessor(12, 10)), frame7(new ShortProcessor(12, 10)));
        writeShapes("{\"version\": 1, \"ndim\": 2, \"frames\": [{\"frame\": 5, \"objects\": ["
                + obj(1, RECT, 0.9) + "," + obj(3, RECT, 0.9) + "]}]}");
        assertEquals("shapes.json has no entry for frame 7: the outputs are partial", failure().getMessage());
    }

    @Test
    void labelsAndShapesMustAgree() throws Exception {
        writeLabels(frame5(new ShortProcessor(12, 10)), frame7(new ShortProcessor(12, 10)));
        writeShapes(shapes(obj(1, RECT, 0.9) + ", " + obj(3, RECT, 0.5) + ", " + obj(4, RECT, 0.5),
                obj(2, SQUARE, 0.75)));
        assertEquals("shapes.json lists label 4 in frame 5 but labels.tif has no such label in that frame",
                failure().getMessage());
        // a 2D label without an outline is one the engine left out as degenerate: dropped, as TrackMate does
        writeShapes(shapes(obj(1, RECT, 0.9), obj(2, SQUARE, 0.75)));
        Detections d = ResultsReader.read(dir, input, null);
        assertEquals(2, d.count());
        assertEquals(1, d.dropped());
        assertEquals(2, d.listed());
        writeShapes(shapes(obj(1, RECT, 0.9) + ", " + obj(1, RECT, 0.9) + ", " + obj(3, RECT, 0.5),
                obj(2, SQUARE, 0.75)));
        assertEquals("shapes.json lists label 1 twice in frame 5", failure().getMessage());
    }

    @Test
    void malformedShapesAreErrors() throws Exception {
        writeLabels(frame5(new ShortProcessor(12, 10)), frame7(new ShortProcessor(12, 10)));
        writeShapes(shapes(obj(1, RECT, 0.9), "").substring(0, 60));
        assertTrue(failure().getMessage().startsWith("shapes.json is not valid JSON (truncated?)"));
        writeShapes(shapes(obj(1, RECT, 0.9) + ", " + obj(3, RECT, 0.5), obj(2, SQUARE, 0.75))
                .replace("\"version\": 1", "\"version\": 2"));
        assertEquals("shapes.json has version 2; this bridge reads version 1: update the Fiji plugin",
                failure().getMessage());
        writeShapes(shapes(obj(1, RECT, 0.9) + ", " + obj(3, RECT, 0.5), obj(2, SQUARE, 0.75))
                .replace("\"ndim\": 2", "\"ndim\": 3"));
        assertEquals("shapes.json has ndim 3 but the job was 2D", failure().getMessage());
        writeShapes(shapes(obj(1, "[[2,3],[2],[6,8]]", 0.9) + ", " + obj(3, RECT, 0.5), obj(2, SQUARE, 0.75)));
        assertEquals("shapes.json, frame 5, label 1: polygon vertex 1 is not [x, y]", failure().getMessage());
        writeShapes(shapes(obj(1, RECT, 0.9) + ", " + obj(3, RECT, 0.5), obj(2, SQUARE, 0.75))
                .replace("\"quality\": 0.75", "\"quality\": \"high\""));
        assertEquals("shapes.json, frame 7, label 2: \"quality\" must be a number, got a string \"high\"",
                failure().getMessage());
        writeShapes(shapes(obj(1, RECT, 0.9) + ", " + obj(3, RECT, 0.5), obj(2, SQUARE, 0.75))
                .replace("\"frame\": 7", "\"frame\": 8"));
        assertEquals("shapes.json has frame 8, which was not requested", failure().getMessage());
    }

    @Test
    void nonIntegerLabelValuesAreAnError() throws Exception {
        FloatProcessor bad = new FloatProcessor(12, 10);
        bad.setf(0, 0, 1.5f);
        writeLabels(bad, new FloatProcessor(12, 10));
        writeShapes(shapes("", ""));
        assertTrue(failure().getMessage().startsWith("labels.tif holds 1.5 in frame 5"));
    }

    // ------------------------------------------------------------------ 3D

    static byte[] ply(double[][] vertices, int[][] faces) {
        StringBuilder header = new StringBuilder("ply\nformat binary_little_endian 1.0\ncomment made by a test\n");
        header.append("element vertex ").append(vertices.length).append('\n');
        header.append("property float x\nproperty float y\nproperty float z\nproperty uchar quality\n");
        header.append("element face ").append(faces.length).append('\n');
        header.append("property list uchar int vertex_indices\nend_header\n");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(header.toString().getBytes(StandardCharsets.US_ASCII));
        ByteBuffer b = ByteBuffer.allocate(vertices.length * 13 + faces.length * 13).order(ByteOrder.LITTLE_ENDIAN);
        for (double[] v : vertices) {
            b.putFloat((float) v[0]).putFloat((float) v[1]).putFloat((float) v[2]).put((byte) 7);
        }
        for (int[] f : faces) {
            b.put((byte) 3).putInt(f[0]).putInt(f[1]).putInt(f[2]);
        }
        out.write(b.array(), 0, b.position());
        return out.toByteArray();
    }

    @Test
    void threeDObjectsHaveVolumeCentroidZAndMesh() throws Exception {
        ImageStack s = new ImageStack(6, 5);
        for (int z = 0; z < 4; z++) {
            s.addSlice(new ShortProcessor(6, 5));
        }
        ImagePlus image = new ImagePlus("in", s);
        image.setDimensions(1, 4, 1);
        Calibration cal = image.getCalibration();
        cal.pixelWidth = 0.5;
        cal.pixelHeight = 0.5;
        cal.pixelDepth = 2.0;
        JobInput in3d = JobInput.of(image, new int[] {3}, 1, 2);

        ShortProcessor[] planes = new ShortProcessor[4];
        for (int z = 0; z < 4; z++) {
            planes[z] = new ShortProcessor(6, 5);
            if (z == 1 || z == 2) {
                planes[z].set(1, 1, 1);
                planes[z].set(2, 1, 1);
            }
        }
        writeLabels(4, planes);
        Files.createDirectories(dir.resolve("meshes"));
        Files.write(dir.resolve("meshes").resolve("3_1.ply"), ply(new double[][] {{1, 1, 1}, {3, 1, 1}, {1, 2, 3}},
                new int[][] {{0, 1, 2}}));
        writeShapes("{\"version\": 1, \"ndim\": 3, \"frames\": [{\"frame\": 3, \"objects\": [{\"label\": 1, "
                + "\"centroid\": [2, 1.5, 2], \"volume\": 4, \"quality\": 0.8, \"mesh\": \"meshes/3_1.ply\"}]}]}");

        Detections d = ResultsReader.read(dir, in3d, null);
        DetectedObject o = d.objects(3).get(0);
        assertTrue(o.is3D());
        assertEquals((1.5 + 1) * 0.5, o.x(), 1e-12);
        assertEquals((1 + 2) * 0.5, o.y(), 1e-12);
        assertEquals(1.5 * 2.0, o.z(), 1e-12);
        assertEquals(4, o.pixelCount());
        assertEquals(4 * 0.5 * 0.5 * 2.0, o.size(), 1e-12);
        assertEquals(Math.cbrt(3 * 2.0 / (4 * Math.PI)), o.radius(), 1e-12);
        assertNull(o.polygonX());
        Mesh m = o.mesh();
        assertEquals(3, m.nVertices());
        assertEquals(1, m.nTriangles());
        assertArrayEquals(new int[] {0, 1, 2}, m.triangles());
        // (vertex + offset - 0.5) * calibration, offset (1, 2, 0)
        assertArrayEquals(new double[] {0.75, 1.25, 1.0, 1.75, 1.25, 1.0, 0.75, 1.75, 5.0}, m.vertices(), 1e-6);

        writeShapes("{\"version\": 1, \"ndim\": 3, \"frames\": [{\"frame\": 3, \"objects\": [{\"label\": 1, "
                + "\"quality\": 0.8, \"mesh\": \"../../etc/passwd\"}]}]}");
        BridgeException escape = assertThrows(BridgeException.class, () -> ResultsReader.read(dir, in3d, null));
        assertTrue(escape.getMessage().contains("leaves the job folder"), escape.getMessage());
        writeShapes("{\"version\": 1, \"ndim\": 3, \"frames\": [{\"frame\": 3, \"objects\": [{\"label\": 1, "
                + "\"quality\": 0.8, \"mesh\": \"meshes/3_9.ply\"}]}]}");
        BridgeException missing = assertThrows(BridgeException.class, () -> ResultsReader.read(dir, in3d, null));
        assertEquals("shapes.json, frame 3, label 1: mesh file meshes/3_9.ply is missing", missing.getMessage());
        // in 3D every label must be listed: the engine lists all, with or without a mesh
        writeShapes("{\"version\": 1, \"ndim\": 3, \"frames\": [{\"frame\": 3, \"objects\": []}]}");
        BridgeException unlisted = assertThrows(BridgeException.class, () -> ResultsReader.read(dir, in3d, null));
        assertEquals("labels.tif has label [1] in frame 3 that shapes.json does not list: the outputs are partial or "
                + "inconsistent", unlisted.getMessage());
        writeShapes("{\"version\": 1, \"ndim\": 3, \"frames\": [{\"frame\": 3, \"objects\": [{\"label\": 1, "
                + "\"quality\": 0.8}]}]}");
        assertNull(ResultsReader.read(dir, in3d, null).objects(3).get(0).mesh(), "a mesh is optional");
    }

    @Test
    void asciiPlyAndQuadsAreRead() throws Exception {
        String text = "ply\nformat ascii 1.0\nelement vertex 4\nproperty double x\nproperty double y\n"
                + "property double z\nelement face 1\nproperty list uchar uint vertex_index\nend_header\n"
                + "0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n";
        Path f = Files.write(dir.resolve("quad.ply"), text.getBytes(StandardCharsets.US_ASCII));
        Mesh m = PlyReader.read(f);
        assertEquals(4, m.nVertices());
        assertArrayEquals(new int[] {0, 1, 2, 0, 2, 3}, m.triangles());
        Path truncated = Files.write(dir.resolve("bad.ply"), java.util.Arrays.copyOf(ply(new double[][] {{1, 1, 1}},
                new int[][] {}), 60));
        assertThrows(java.io.IOException.class, () -> PlyReader.read(truncated));
    }
}

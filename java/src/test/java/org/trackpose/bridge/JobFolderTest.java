package org.trackpose.bridge;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ij.ImagePlus;
import ij.ImageStack;
import ij.io.Opener;
import ij.measure.Calibration;
import ij.process.ColorProcessor;
import ij.process.FloatProcessor;
import ij.process.ShortProcessor;
import java.awt.Rectangle;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JobFolderTest {

    /** A C x Z x T hyperstack, 16-bit, whose pixel (x, y) in plane (c, z, t) holds 1000c + 100z + 10t + x + y. */
    static ImagePlus hyperstack(int w, int h, int nC, int nZ, int nT) {
        ImageStack stack = new ImageStack(w, h);
        for (int t = 0; t < nT; t++) {
            for (int z = 0; z < nZ; z++) {
                for (int c = 0; c < nC; c++) {
                    ShortProcessor sp = new ShortProcessor(w, h);
                    for (int y = 0; y < h; y++) {
                        for (int x = 0; x < w; x++) {
                            sp.set(x, y, 1000 * c + 100 * z + 10 * t + x + y);
                        }
                    }
                    stack.addSlice(sp);
                }
            }
        }
        ImagePlus imp = new ImagePlus("movie", stack);
        imp.setDimensions(nC, nZ, nT);
        imp.setOpenAsHyperStack(true);
        Calibration cal = imp.getCalibration();
        cal.pixelWidth = 0.65;
        cal.pixelHeight = 0.65;
        cal.pixelDepth = 2.0;
        cal.setUnit("micron");
        return imp;
    }

    @Test
    void folderIsUniquePrivateAndRemoved(@TempDir Path root) throws Exception {
        JobFolder a = JobFolder.create(root, false);
        JobFolder b = JobFolder.create(root, false);
        assertNotEquals(a.path(), b.path());
        assertTrue(a.path().getFileName().toString().startsWith("trackpose-job-"));
        assertEquals(root, a.path().getParent());
        if (FileSystems.getDefault().supportedFileAttributeViews().contains("posix")) {
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(a.path())));
        }
        Files.write(a.file("input.tif"), new byte[] {1, 2, 3});
        Files.createDirectories(a.file("meshes"));
        Files.write(a.file("meshes").resolve("0_1.ply"), new byte[] {4});
        a.close();
        assertFalse(Files.exists(a.path()), "folder and its content removed");
        a.close(); // twice is fine
        b.close();
        assertEquals(0, Files.list(root).count());
    }

    @Test
    void defaultParentIsTheSystemTempFolder() throws Exception {
        try (JobFolder f = JobFolder.create(null, false)) {
            assertEquals(java.nio.file.Paths.get(System.getProperty("java.io.tmpdir")).toRealPath(),
                    f.path().getParent().toRealPath());
            assumeTrue(FileSystems.getDefault().supportedFileAttributeViews().contains("posix"));
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(f.path())));
        }
    }

    @Test
    void keptFolderStays(@TempDir Path root) throws Exception {
        JobFolder f = JobFolder.create(root, true);
        f.close();
        assertTrue(Files.isDirectory(f.path()));
        JobFolder g = JobFolder.create(root, false);
        g.setKeep(true);
        g.close();
        assertTrue(Files.isDirectory(g.path()));
    }

    @Test
    void inputTifIsAHyperstackWithCalibration(@TempDir Path root) throws Exception {
        ImagePlus movie = hyperstack(20, 16, 2, 3, 4);
        JobInput input = JobInput.crop(movie, new Rectangle(5, 4, 10, 8), new int[] {3, 1});
        try (JobFolder job = JobFolder.create(root, false)) {
            job.writeInput(input.image());
            ImagePlus back = new Opener().openImage(job.file(JobFolder.INPUT).toString());
            assertNotNull(back);
            assertEquals(10, back.getWidth());
            assertEquals(8, back.getHeight());
            assertEquals(2, back.getNChannels());
            assertEquals(3, back.getNSlices());
            assertEquals(2, back.getNFrames(), "T = frames sent, not the movie's length");
            assertEquals(16, back.getBitDepth());
            // TIFF stores the scale as a rational: close, not exact (job.json carries the exact value)
            assertEquals(0.65, back.getCalibration().pixelWidth, 1e-6);
            assertEquals(2.0, back.getCalibration().pixelDepth, 1e-9);
            assertEquals("micron", back.getCalibration().getUnit());
            // plane (c=1, z=2, t=second sent = movie frame 1), pixel (0, 0) = movie pixel (5, 4)
            int v = (int) back.getStack().getProcessor(back.getStackIndex(2, 3, 2)).getPixelValue(0, 0);
            assertEquals(1000 + 200 + 10 + 5 + 4, v);
            int first = (int) back.getStack().getProcessor(back.getStackIndex(1, 1, 1)).getPixelValue(1, 0);
            assertEquals(30 + 6 + 4, first, "first sent frame is movie frame 3");
        }
    }

    @Test
    void cropClipsAndChecksFrames() {
        ImagePlus movie = hyperstack(10, 10, 1, 1, 3);
        JobInput all = JobInput.crop(movie, null, null);
        assertArrayEquals(new int[] {0, 1, 2}, all.frames());
        assertEquals(0, all.offsetX());
        JobInput clipped = JobInput.crop(movie, new Rectangle(6, 7, 100, 100), new int[] {2});
        assertEquals(4, clipped.width());
        assertEquals(3, clipped.height());
        assertEquals(6, clipped.offsetX());
        assertEquals(7, clipped.offsetY());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> JobInput.crop(movie, null, new int[] {3}));
        assertEquals("frame 3 does not exist: the image has 3 frames (0..2)", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> JobInput.crop(movie, new Rectangle(20, 20, 5, 5), null));
    }

    @Test
    void rgbBecomesThreeChannels() {
        ColorProcessor cp = new ColorProcessor(4, 3);
        cp.set(1, 2, (10 << 16) | (20 << 8) | 30);
        ImagePlus rgb = new ImagePlus("rgb", cp);
        JobInput input = JobInput.crop(rgb, null, null);
        assertEquals(3, input.nChannels());
        ImagePlus imp = input.image();
        assertEquals(10, imp.getStack().getProcessor(imp.getStackIndex(1, 1, 1)).get(1, 2));
        assertEquals(20, imp.getStack().getProcessor(imp.getStackIndex(2, 1, 1)).get(1, 2));
        assertEquals(30, imp.getStack().getProcessor(imp.getStackIndex(3, 1, 1)).get(1, 2));
    }

    @Test
    void floatImagesAreWrittenAsFloat(@TempDir Path root) throws Exception {
        FloatProcessor fp = new FloatProcessor(5, 5);
        fp.setf(2, 3, -1.25f);
        try (JobFolder job = JobFolder.create(root, false)) {
            job.writeInput(JobInput.crop(new ImagePlus("f", fp), null, null).image());
            ImagePlus back = new Opener().openImage(job.file(JobFolder.INPUT).toString());
            assertEquals(32, back.getBitDepth());
            assertEquals(-1.25f, back.getProcessor().getf(2, 3));
        }
    }

    @Test
    void jobJsonFollowsTheProtocol(@TempDir Path root) throws Exception {
        ImagePlus movie = hyperstack(8, 8, 1, 1, 5);
        JobInput input = JobInput.crop(movie, null, new int[] {4, 0, 2});
        DetectorSettings settings = DetectorSettings.defaults().set(DetectorKeys.KEY_CELL_DIAMETER, 6.5);
        try (JobFolder job = JobFolder.create(root, false)) {
            job.writeJob(JobFolder.jobJson(settings, input));
            Map<String, Object> j = Json.parseObject(new String(Files.readAllBytes(job.file(JobFolder.JOB)),
                    StandardCharsets.UTF_8));
            assertEquals(List.of("version", "frames", "calibration", "settings", "outputs"), List.copyOf(j.keySet()));
            assertEquals(1L, j.get("version"));
            assertEquals(Arrays.asList(4L, 0L, 2L), j.get("frames"));
            Map<?, ?> cal = (Map<?, ?>) j.get("calibration");
            assertEquals(0.65, cal.get("x"));
            assertEquals(0.65, cal.get("y"));
            assertEquals(2.0, cal.get("z"));
            assertEquals("micron", cal.get("unit"));
            // T only: ImageJ's description says frames=, so the engine sees a movie, not a Z stack
            job.writeInput(input.image());
            String description = new ij.io.TiffDecoder(job.path() + java.io.File.separator, "input.tif")
                    .getTiffInfo()[0].description;
            assertTrue(description.contains("frames=3"), description);
            assertFalse(description.contains("slices="), description);
            Map<?, ?> s = (Map<?, ?>) j.get("settings");
            assertEquals(10.0, (Double) s.get("diameter"), 1e-9);
            assertEquals(Map.of("labels", true, "shapes", true, "meshes", false), j.get("outputs"));
        }
    }

    @Test
    void writingIntoAVanishedFolderIsAnIoError(@TempDir Path root) throws Exception {
        JobFolder job = JobFolder.create(root, false);
        Files.delete(job.path());
        BridgeException e = assertThrows(BridgeException.class,
                () -> job.writeInput(hyperstack(4, 4, 1, 1, 1)));
        assertEquals(BridgeException.Kind.IO, e.kind());
        assertTrue(e.getMessage().startsWith("cannot write " + job.file("input.tif")), e.getMessage());
        assertFalse(Files.exists(job.file("input.tif.part")));
        BridgeException e2 = assertThrows(BridgeException.class, () -> job.writeJob(Map.of("version", 1)));
        assertEquals(BridgeException.Kind.IO, e2.kind());
        job.close();
    }

    /**
     * A real "no space left on device" (ENOSPC) without root: the file being written is a symbolic link to
     * /dev/full (Linux), where every write fails that way.
     */
    @Test
    void fullDiskWhileWritingTheJobIsAnIoErrorThatSaysSo(@TempDir Path root) throws Exception {
        Path devFull = java.nio.file.Paths.get("/dev/full");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.exists(devFull), "needs /dev/full (Linux)");
        JobFolder job = JobFolder.create(root, false);
        Files.createSymbolicLink(job.file("input.tif.part"), devFull);
        BridgeException e = assertThrows(BridgeException.class,
                () -> job.writeInput(hyperstack(64, 64, 1, 1, 2)));
        assertEquals(BridgeException.Kind.IO, e.kind());
        assertTrue(e.getMessage().startsWith("cannot write " + job.file("input.tif")), e.getMessage());
        assertTrue(e.getMessage().contains("No space left on device"), e.getMessage());
        assertTrue(e.getMessage().contains("is the disk full? Free space or choose another temporary folder"),
                e.getMessage());
        assertFalse(Files.exists(job.file("input.tif.part"), java.nio.file.LinkOption.NOFOLLOW_LINKS));
        assertFalse(Files.exists(job.file("input.tif")));

        Files.createSymbolicLink(job.file("job.json"), devFull);
        BridgeException e2 = assertThrows(BridgeException.class, () -> job.writeJob(Map.of("version", 1)));
        assertEquals(BridgeException.Kind.IO, e2.kind());
        assertTrue(e2.getMessage().contains("No space left on device") && e2.getMessage().contains("disk full"),
                e2.getMessage());
        job.close();
        assertFalse(Files.exists(job.path()), "no folder left");
        assertTrue(Files.exists(devFull), "only the link was removed");
    }

    @Test
    void requireOutputsNamesTheMissingFile(@TempDir Path root) throws Exception {
        try (JobFolder job = JobFolder.create(root, false)) {
            BridgeException e = assertThrows(BridgeException.class, () -> job.requireOutputs("3 objects"));
            assertEquals(BridgeException.Kind.OUTPUT, e.kind());
            assertEquals("the engine reported success but labels.tif is missing in " + job.path()
                    + "; engine said: 3 objects", e.getMessage());
            Files.write(job.file("labels.tif"), new byte[] {1});
            Files.write(job.file("shapes.json"), new byte[0]);
            BridgeException empty = assertThrows(BridgeException.class, () -> job.requireOutputs(""));
            assertTrue(empty.getMessage().contains("shapes.json is empty"), empty.getMessage());
            Files.write(job.file("shapes.json"), "{}".getBytes(StandardCharsets.UTF_8));
            job.requireOutputs("");
        }
    }
}

package org.trackpose.bridge;

import static org.junit.jupiter.api.Assertions.*;

import ij.ImagePlus;
import java.awt.Rectangle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The whole round trip with the fake engine: image in, objects in the caller's coordinates out, folder gone. */
class BridgeClientTest {

    @TempDir
    Path root;

    /** 30 x 20 movie of 5 frames with 0.5 micron pixels (JobFolderTest.hyperstack has 0.65; reset here). */
    private static ImagePlus movie() {
        ImagePlus imp = JobFolderTest.hyperstack(30, 20, 1, 1, 5);
        imp.getCalibration().pixelWidth = 0.5;
        imp.getCalibration().pixelHeight = 0.5;
        return imp;
    }

    private long foldersLeft() throws Exception {
        try (java.util.stream.Stream<Path> s = Files.list(root)) {
            return s.count();
        }
    }

    @Test
    void detectReturnsObjectsInMovieCoordinatesAndCleansUp() throws Exception {
        EngineEventTest.RecordingLogger log = new EngineEventTest.RecordingLogger();
        BridgeClient client = new BridgeClient(FakeEngine.command("ok")).tempRoot(root).logger(log);
        Detections d = client.detect(movie(), new Rectangle(10, 5, 12, 10), new int[] {2, 4},
                DetectorSettings.defaults());
        assertEquals(List.of(2, 4), d.frames());
        assertEquals(1, d.objects(2).size());
        assertEquals(2, d.objects(4).size());
        DetectedObject rect = d.objects(2).get(0);
        assertEquals((3.5 + 10) * 0.5, rect.x(), 1e-12);
        assertEquals((5 + 5) * 0.5, rect.y(), 1e-12);
        DetectedObject dot = d.objects(4).get(1);
        assertEquals(2, dot.label());
        assertEquals((9 + 10) * 0.5, dot.x(), 1e-12);
        assertEquals((1 + 5) * 0.5, dot.y(), 1e-12);
        assertEquals(Math.sqrt(0.25 / Math.PI), dot.radius(), 1e-12);
        List<String> progress = log.snapshot().stream().filter(l -> l.startsWith("PROGRESS"))
                .collect(Collectors.toList());
        assertEquals(List.of("PROGRESS 1/2 frame 2", "PROGRESS 2/2 frame 4"), progress);
        assertEquals(0, foldersLeft(), "job folder removed");
    }

    @Test
    void keptFolderHoldsTheOutputs() throws Exception {
        EngineEventTest.RecordingLogger log = new EngineEventTest.RecordingLogger();
        DetectorSettings settings = DetectorSettings.defaults().set(DetectorKeys.KEY_KEEP_TEMP_FOLDER, true);
        new BridgeClient(FakeEngine.command("ok")).tempRoot(root).logger(log).detect(movie(), null, null, settings);
        assertEquals(1, foldersLeft());
        Path kept = Files.list(root).findFirst().get();
        assertTrue(Files.isRegularFile(kept.resolve("labels.tif")));
        assertTrue(Files.isRegularFile(kept.resolve("job.json")));
        assertTrue(log.snapshot().contains("INFO job folder kept: " + kept), log.snapshot().toString());
    }

    @Test
    void invalidSettingsFailBeforeAnythingRuns() throws Exception {
        DetectorSettings settings = DetectorSettings.defaults().set(DetectorKeys.KEY_TARGET_CHANNEL, 2)
                .set(DetectorKeys.KEY_FLOW_THRESHOLD, 9.0);
        BridgeException e = assertThrows(BridgeException.class, () -> new BridgeClient(FakeEngine.command("ok"))
                .tempRoot(root).detect(movie(), null, null, settings));
        assertEquals(BridgeException.Kind.INPUT, e.kind());
        assertEquals("FLOW_THRESHOLD = 9.0 is out of range: allowed 0 to 3 (flow error threshold)", e.getMessage());
        BridgeException channel = assertThrows(BridgeException.class, () -> new BridgeClient(FakeEngine.command("ok"))
                .tempRoot(root).detect(movie(), null, null, settings.set(DetectorKeys.KEY_FLOW_THRESHOLD, 0.4)));
        assertEquals("TARGET_CHANNEL = 2 but the image has 1 channel (0 = gray/none, 1..1)", channel.getMessage());
        BridgeException frame = assertThrows(BridgeException.class, () -> new BridgeClient(FakeEngine.command("ok"))
                .tempRoot(root).detect(movie(), null, new int[] {9}, DetectorSettings.defaults()));
        assertEquals(BridgeException.Kind.INPUT, frame.kind());
        assertEquals(0, foldersLeft());
    }

    @Test
    void engineFailureLeavesNoFolder() throws Exception {
        BridgeException e = assertThrows(BridgeException.class, () -> new BridgeClient(FakeEngine.command("fail"))
                .tempRoot(root).detect(movie(), null, null, DetectorSettings.defaults()));
        assertEquals(3, e.exitCode());
        assertEquals(0, foldersLeft());
    }

    @Test
    void engineDiskErrorReachesTheCallerAndLeavesNoFolder() throws Exception {
        BridgeException e = assertThrows(BridgeException.class,
                () -> new BridgeClient(FakeEngine.command("disk-full")).tempRoot(root).detect(movie(), null,
                        new int[] {0}, DetectorSettings.defaults()));
        assertEquals(BridgeException.Kind.IO, e.kind());
        assertEquals("disk", e.engineKind());
        assertEquals(1, e.exitCode());
        assertTrue(e.getMessage().startsWith("disk full / file too large at "), e.getMessage());
        assertTrue(e.getMessage().contains("free space or choose another temporary folder"), e.getMessage());
        assertEquals(0, foldersLeft());
    }

    @Test
    void objectCountMismatchIsAnError() throws Exception {
        BridgeException e = assertThrows(BridgeException.class,
                () -> new BridgeClient(FakeEngine.command("ok-wrong-count")).tempRoot(root).detect(movie(), null,
                        new int[] {0, 1}, DetectorSettings.defaults()));
        assertEquals(BridgeException.Kind.OUTPUT, e.kind());
        assertEquals("the engine reported 4 objects but its outputs hold 3: the outputs are partial or inconsistent",
                e.getMessage());
    }

    @Test
    void cancelKillsTheTreeAndRemovesTheFolder() throws Exception {
        EngineEventTest.RecordingLogger log = new EngineEventTest.RecordingLogger();
        BridgeClient client = new BridgeClient(FakeEngine.command("hang")).tempRoot(root).logger(log);
        CompletableFuture<Exception> f = TestJobs.inBackground(
                () -> client.detect(movie(), null, null, DetectorSettings.defaults()));
        ProcessHandle[] pids = TestJobs.waitForPids(log);
        assertEquals(1, foldersLeft(), "the job folder exists while the engine runs");
        client.cancel();
        Exception e = TestJobs.await(f);
        assertEquals(BridgeException.Kind.CANCELLED, ((BridgeException) e).kind());
        assertTrue(TestJobs.ends(pids[0]));
        assertTrue(TestJobs.ends(pids[1]), "grandchild gone");
        assertEquals(0, foldersLeft(), "job folder removed after cancel");
    }

    @Test
    void workerBackedClientGivesTheSameObjects() throws Exception {
        try (WorkerClient worker = new WorkerClient(FakeEngine.command("ok"))) {
            BridgeClient client = new BridgeClient(worker).tempRoot(root);
            Detections first = client.detect(movie(), new Rectangle(10, 5, 12, 10), new int[] {2, 4},
                    DetectorSettings.defaults());
            Detections second = client.detect(movie(), new Rectangle(10, 5, 12, 10), new int[] {2, 4},
                    DetectorSettings.defaults());
            assertEquals(3, first.count());
            assertEquals(first.objects(4).get(1).x(), second.objects(4).get(1).x());
            assertEquals(1, worker.starts());
            assertEquals(0, foldersLeft());
        }
    }
}

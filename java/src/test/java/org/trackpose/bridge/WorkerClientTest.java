package org.trackpose.bridge;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The persistent-worker client against a real child process speaking JSON lines on stdin/stdout. */
class WorkerClientTest {

    @TempDir
    Path root;

    private final WorkerClient worker = new WorkerClient(FakeEngine.command("ok"));

    @AfterEach
    void stop() {
        worker.close();
    }

    @Test
    void oneWorkerServesSeveralJobs() throws Exception {
        try (JobFolder a = TestJobs.prepare(root, null); JobFolder b = TestJobs.prepare(root, null)) {
            EngineEventTest.RecordingLogger log = new EngineEventTest.RecordingLogger();
            assertEquals(3, worker.run(a, log).objects());
            long pid = worker.process().pid();
            assertTrue(log.snapshot().contains("PROGRESS 2/2 frame 1"), log.snapshot().toString());
            assertEquals(3, worker.run(b, null).objects());
            assertEquals(pid, worker.process().pid(), "the same process answered both");
            assertEquals(1, worker.starts());
        }
    }

    @Test
    void anErrorFailsTheJobButNotTheWorker() throws Exception {
        try (JobFolder bad = TestJobs.prepare(root, "error-event"); JobFolder good = TestJobs.prepare(root, null)) {
            BridgeException e = assertThrows(BridgeException.class, () -> worker.run(bad, null));
            assertEquals(BridgeException.Kind.INPUT, e.kind());
            assertTrue(e.getMessage().startsWith("frame 1: channel 3 does not exist"), e.getMessage());
            assertTrue(worker.isAlive());
            assertEquals(3, worker.run(good, null).objects());
            assertEquals(1, worker.starts());
        }
    }

    @Test
    void aDeadWorkerIsReportedAndRestarted() throws Exception {
        try (JobFolder crash = TestJobs.prepare(root, "die"); JobFolder good = TestJobs.prepare(root, null)) {
            BridgeException e = assertThrows(BridgeException.class, () -> worker.run(crash, null));
            assertEquals(BridgeException.Kind.ENGINE, e.kind());
            assertEquals(5, e.exitCode());
            assertTrue(e.getMessage().startsWith("the engine worker stopped while running the job (exit code 5)"),
                    e.getMessage());
            assertTrue(e.getMessage().contains("worker crashed: segmentation fault"), e.getMessage());
            assertFalse(worker.isAlive());
            assertEquals(3, worker.run(good, null).objects());
            assertEquals(2, worker.starts(), "restarted");
        }
    }

    @Test
    void aWorkerKilledBetweenJobsIsRestarted() throws Exception {
        try (JobFolder a = TestJobs.prepare(root, null); JobFolder b = TestJobs.prepare(root, null)) {
            worker.run(a, null);
            ProcessTree.kill(worker.process());
            assertEquals(3, worker.run(b, null).objects());
            assertEquals(2, worker.starts());
        }
    }

    @Test
    void cancelStopsTheWorkerAndItsChildren() throws Exception {
        EngineEventTest.RecordingLogger log = new EngineEventTest.RecordingLogger();
        try (JobFolder hang = TestJobs.prepare(root, "hang"); JobFolder good = TestJobs.prepare(root, null)) {
            CompletableFuture<Exception> f = TestJobs.inBackground(() -> worker.run(hang, log));
            ProcessHandle[] pids = TestJobs.waitForPids(log);
            worker.cancel();
            Exception e = TestJobs.await(f);
            assertEquals(BridgeException.Kind.CANCELLED, ((BridgeException) e).kind());
            assertTrue(TestJobs.ends(pids[0]), "worker stopped");
            assertTrue(TestJobs.ends(pids[1]), "its child stopped");
            assertEquals(3, worker.run(good, null).objects(), "the next job gets a fresh worker");
        }
    }

    @Test
    void closeEndsTheWorker() throws Exception {
        try (JobFolder a = TestJobs.prepare(root, null)) {
            worker.run(a, null);
            ProcessHandle h = worker.process().toHandle();
            worker.close();
            assertTrue(TestJobs.ends(h));
            assertFalse(worker.isAlive());
        }
    }
}

package org.trackpose.bridge;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The one-shot runner against a real child process (the fake engine in a second JVM). */
class JobRunnerTest {

    @TempDir
    Path root;

    private BridgeException failing(String scenario) throws Exception {
        try (JobFolder job = TestJobs.prepare(root, null)) {
            return assertThrows(BridgeException.class,
                    () -> new JobRunner(FakeEngine.command(scenario)).run(job, BridgeLogger.NONE));
        }
    }

    @Test
    void successForwardsEventsInOrderAndIgnoresStrayLines() throws Exception {
        EngineEventTest.RecordingLogger log = new EngineEventTest.RecordingLogger();
        try (JobFolder job = TestJobs.prepare(root, null)) {
            EngineResult r = new JobRunner(FakeEngine.command("ok")).run(job, log);
            assertEquals(3, r.objects());
            assertEquals(2, r.frames());
            assertTrue(Files.isRegularFile(job.file("labels.tif")));
            List<String> lines = log.snapshot();
            assertTrue(lines.contains("DEBUG engine stdout: a stray line printed by some library"), lines.toString());
            List<String> events = lines.stream().filter(l -> !l.startsWith("DEBUG")).collect(
                    java.util.stream.Collectors.toList());
            assertEquals(List.of("INFO loading model", "WARNING no GPU, running on CPU", "PROGRESS 1/2 frame 0",
                    "PROGRESS 2/2 frame 1"), events);
        }
    }

    @Test
    void nonZeroExitCarriesStderr() throws Exception {
        BridgeException e = failing("fail");
        assertEquals(BridgeException.Kind.ENGINE, e.kind());
        assertEquals(3, e.exitCode());
        assertTrue(e.getMessage().startsWith("the engine (fake engine (fail)) exited with code 3:"), e.getMessage());
        assertTrue(e.getMessage().contains("RuntimeError: CUDA out of memory"), e.getMessage());
        assertTrue(e.stderr().contains("Traceback (most recent call last):"), e.stderr());
    }

    @Test
    void errorEventBecomesTheMessage() throws Exception {
        BridgeException e = failing("error-event");
        assertEquals(BridgeException.Kind.INPUT, e.kind());
        assertEquals("input", e.engineKind());
        assertEquals(2, e.exitCode());
        assertEquals("frame 1: channel 3 does not exist (the image has 2 channels) [input] (exit code 2)",
                e.getMessage());
        assertTrue(e.stderr().contains("InputError: channel 3 does not exist"));
    }

    @Test
    void errorEventWinsEvenWithExitCodeZero() throws Exception {
        BridgeException e = failing("error-exit0");
        assertEquals(BridgeException.Kind.ENGINE, e.kind());
        assertEquals("model", e.engineKind());
        assertEquals("model file is corrupt [model]", e.getMessage());
    }

    @Test
    void missingLabelsAfterSuccessIsAnError() throws Exception {
        BridgeException e = failing("no-labels");
        assertEquals(BridgeException.Kind.OUTPUT, e.kind());
        assertTrue(e.getMessage().startsWith("the engine reported success but labels.tif is missing"),
                e.getMessage());
    }

    @Test
    void exitZeroWithoutDoneIsAnError() throws Exception {
        BridgeException e = failing("no-done");
        assertEquals(BridgeException.Kind.ENGINE, e.kind());
        assertTrue(e.getMessage().contains("exited with code 0 without reporting 'done'"), e.getMessage());
        assertTrue(e.getMessage().contains("a stray line printed by some library"), e.getMessage());
    }

    @Test
    void stderrKeptIsBounded() throws Exception {
        BridgeException e = failing("spam-stderr");
        assertEquals(1, e.exitCode());
        assertTrue(e.stderr().length() < 70_000, "kept " + e.stderr().length() + " chars");
        assertTrue(e.stderr().contains("stderr line 19999 "), "the last lines are kept");
        assertTrue(e.stderr().startsWith("["), "says that earlier lines were dropped");
        assertTrue(e.getMessage().length() < 5_000, "the message shows only the tail");
    }

    @Test
    void engineThatCannotStartIsAnEnvironmentError() throws Exception {
        try (JobFolder job = TestJobs.prepare(root, null)) {
            PythonEnvironment none = PythonEnvironment.python(root.resolve("no-python").toString());
            BridgeException e = assertThrows(BridgeException.class, () -> new JobRunner(none).run(job, null));
            assertEquals(BridgeException.Kind.ENVIRONMENT, e.kind());
            assertTrue(e.getMessage().startsWith("cannot start the engine with python '"), e.getMessage());
        }
    }

    @Test
    void cancelKillsTheWholeProcessTree() throws Exception {
        EngineEventTest.RecordingLogger log = new EngineEventTest.RecordingLogger();
        JobRunner runner = new JobRunner(FakeEngine.command("hang"));
        try (JobFolder job = TestJobs.prepare(root, null)) {
            CompletableFuture<Exception> f = TestJobs.inBackground(() -> runner.run(job, log));
            ProcessHandle[] pids = TestJobs.waitForPids(log);
            assertTrue(pids[1].isAlive());
            assertEquals(pids[0].pid(), pids[1].parent().map(ProcessHandle::pid).orElse(-1L),
                    "the sleeper is the engine's child");
            long start = System.nanoTime();
            runner.cancel();
            Exception e = TestJobs.await(f);
            assertTrue(e instanceof BridgeException, String.valueOf(e));
            assertEquals(BridgeException.Kind.CANCELLED, ((BridgeException) e).kind());
            assertTrue((System.nanoTime() - start) / 1e9 < 15, "cancel is prompt");
            assertTrue(TestJobs.ends(pids[0]), "engine stopped");
            assertTrue(TestJobs.ends(pids[1]), "grandchild stopped too");
            assertNull(runner.process());
        }
    }

    @Test
    void cancelledRunnerRefusesToStart() throws Exception {
        JobRunner runner = new JobRunner(FakeEngine.command("ok"));
        runner.cancel();
        try (JobFolder job = TestJobs.prepare(root, null)) {
            BridgeException e = assertThrows(BridgeException.class, () -> runner.run(job, null));
            assertEquals(BridgeException.Kind.CANCELLED, e.kind());
        }
    }

    @Test
    void timeoutStopsTheTree() throws Exception {
        EngineEventTest.RecordingLogger log = new EngineEventTest.RecordingLogger();
        JobRunner runner = new JobRunner(FakeEngine.command("hang")).timeout(Duration.ofSeconds(5));
        try (JobFolder job = TestJobs.prepare(root, null)) {
            CompletableFuture<Exception> f = TestJobs.inBackground(() -> runner.run(job, log));
            ProcessHandle[] pids = TestJobs.waitForPids(log);
            Exception e = TestJobs.await(f);
            assertEquals(BridgeException.Kind.TIMEOUT, ((BridgeException) e).kind());
            assertTrue(e.getMessage().startsWith("the engine did not finish within 5 s"), e.getMessage());
            assertTrue(TestJobs.ends(pids[0]));
            assertTrue(TestJobs.ends(pids[1]));
        }
    }
}

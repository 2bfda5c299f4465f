package org.trackpose.bridge;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/** Helpers shared by the tests that run the fake engine as a real child process. */
final class TestJobs {

    private TestJobs() {
    }

    /** A 12 x 10, two-frame job folder; {@code scenario} (may be null) overrides the worker's scenario. */
    static JobFolder prepare(Path root, String scenario) throws Exception {
        JobInput input = JobInput.crop(JobFolderTest.hyperstack(12, 10, 1, 1, 2), null, null);
        JobFolder job = JobFolder.create(root, false);
        job.writeInput(input.image());
        job.writeJob(JobFolder.jobJson(DetectorSettings.defaults(), input));
        if (scenario != null) {
            Files.write(job.file("scenario"), scenario.getBytes(StandardCharsets.UTF_8));
        }
        return job;
    }

    /** Runs {@code call} on another thread; the future holds its exception (or null when it returned). */
    static CompletableFuture<Exception> inBackground(Callable<?> call) {
        return CompletableFuture.supplyAsync(() -> {
            try {
                call.call();
                return null;
            } catch (Exception e) {
                return e;
            }
        });
    }

    /** Waits for the fake's "pids PARENT CHILD" log line and returns live handles of both. */
    static ProcessHandle[] waitForPids(EngineEventTest.RecordingLogger log) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (System.nanoTime() < deadline) {
            for (String line : log.snapshot()) {
                if (line.startsWith("INFO pids ")) {
                    String[] w = line.split(" ");
                    Optional<ProcessHandle> engine = ProcessHandle.of(Long.parseLong(w[2]));
                    Optional<ProcessHandle> grandchild = ProcessHandle.of(Long.parseLong(w[3]));
                    assertTrue(engine.isPresent() && grandchild.isPresent(), "both processes running");
                    return new ProcessHandle[] {engine.get(), grandchild.get()};
                }
            }
            Thread.sleep(20);
        }
        fail("the fake engine never reported its pids: " + log.snapshot());
        return null;
    }

    /** True when the process is gone within a few seconds. */
    static boolean ends(ProcessHandle h) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (h.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        return !h.isAlive();
    }

    static Exception await(CompletableFuture<Exception> f) throws Exception {
        try {
            return f.get(60, java.util.concurrent.TimeUnit.SECONDS);
        } catch (CompletionException e) {
            throw (Exception) e.getCause();
        }
    }
}

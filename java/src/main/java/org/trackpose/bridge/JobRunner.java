package org.trackpose.bridge;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs one job in a fresh engine process ({@code trackpose job DIR}) and waits for it: events on stdout go to the
 * logger as they arrive, stderr is kept (bounded) for the failure message, {@link #cancel()} stops the whole process
 * tree. A run either returns an {@link EngineResult} with its outputs in place or throws a {@link BridgeException}.
 *
 * <p>One runner runs one job at a time; make one per job, or reuse it sequentially.
 */
public final class JobRunner {

    private final EngineCommand command;
    private Duration timeout;
    private volatile boolean cancelled;
    private volatile Process process;

    public JobRunner(EngineCommand command) {
        this.command = command;
    }

    /** Stop the engine and fail with {@link BridgeException.Kind#TIMEOUT} after this long; null = no limit. */
    public JobRunner timeout(Duration limit) {
        this.timeout = limit;
        return this;
    }

    /**
     * Runs the job in {@code jobDir} (input.tif and job.json written) and returns when the engine exited with
     * success and its outputs exist.
     *
     * @throws BridgeException with the engine's message on any failure, cancellation or time-out
     */
    public EngineResult run(JobFolder job, BridgeLogger logger) throws BridgeException {
        Path dir = job.path();
        EngineOutput output = new EngineOutput(logger);
        if (cancelled) {
            throw cancelledException(output);
        }
        List<String> argv = command.jobCommand(dir);
        ProcessBuilder pb = new ProcessBuilder(argv).directory(dir.toFile());
        pb.environment().putAll(command.environment());
        long start = System.nanoTime();
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new BridgeException(BridgeException.Kind.ENVIRONMENT, "cannot start the engine with "
                    + command.describe() + " (" + argv.get(0) + "): " + e.getMessage(), e);
        }
        process = p;
        Cleanup.register(p);
        try {
            try {
                p.getOutputStream().close(); // the job engine reads nothing from stdin
            } catch (IOException ignored) {
                // already closed
            }
            Thread out = EngineOutput.pump(p.getInputStream(), output::onStdoutLine, "trackpose-job-stdout");
            Thread err = EngineOutput.pump(p.getErrorStream(), output::onStderrLine, "trackpose-job-stderr");
            boolean timedOut = false;
            long deadline = timeout == null || timeout.isZero() ? Long.MAX_VALUE : start + timeout.toNanos();
            while (true) {
                if (cancelled) {
                    ProcessTree.kill(p);
                    break;
                }
                if (System.nanoTime() > deadline) {
                    timedOut = true;
                    ProcessTree.kill(p);
                    break;
                }
                if (p.waitFor(50, TimeUnit.MILLISECONDS)) {
                    break;
                }
            }
            // Events written just before exit are still in the pipe: let the readers finish. A grandchild that
            // inherited the pipe could keep it open forever, hence the bound.
            join(out, 3000);
            join(err, 3000);
            if (cancelled) {
                throw cancelledException(output);
            }
            if (timedOut) {
                throw new BridgeException(BridgeException.Kind.TIMEOUT, "the engine did not finish within "
                        + timeout.getSeconds() + " s and was stopped", null, null, output.stderr(), null);
            }
            int exit = p.exitValue();
            throwOnFailure(output, exit, command.describe());
            job.requireOutputs(output.done().message());
            return new EngineResult(output.done(), output.stderr(), Duration.ofNanos(System.nanoTime() - start));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            ProcessTree.kill(p);
            throw new BridgeException(BridgeException.Kind.CANCELLED, "interrupted while the engine was running",
                    null, null, output.stderr(), e);
        } finally {
            if (p.isAlive()) {
                ProcessTree.kill(p);
            }
            Cleanup.unregister(p);
            process = null;
        }
    }

    /** The checks common to one-shot jobs and worker requests, once the engine has finished. */
    static void throwOnFailure(EngineOutput output, Integer exit, String who) throws BridgeException {
        EngineEvent error = output.error();
        if (error != null) {
            String kind = error.textField("kind");
            String message = error.message().isEmpty() ? "the engine reported an error without a message"
                    : error.message();
            throw new BridgeException(kindOf(kind), message + (kind.isEmpty() ? "" : " [" + kind + "]")
                    + (exit != null && exit != 0 ? " (exit code " + exit + ")" : ""), kind.isEmpty() ? null : kind,
                    exit, output.stderr(), null);
        }
        if (exit != null && exit != 0) {
            String tail = output.stderrTail(20).trim();
            throw new BridgeException(BridgeException.Kind.ENGINE, "the engine (" + who + ") exited with code " + exit
                    + (tail.isEmpty() ? " and printed nothing on stderr" : ":\n" + tail), null, exit, output.stderr(),
                    null);
        }
        if (output.done() == null) {
            String tail = output.stderrTail(20).trim();
            String stray = output.strayStdout().trim();
            throw new BridgeException(BridgeException.Kind.ENGINE, "the engine (" + who + ") "
                    + (exit == null ? "stopped" : "exited with code 0") + " without reporting 'done'"
                    + (tail.isEmpty() ? "" : ":\n" + tail) + (stray.isEmpty() ? "" : "\nstdout:\n" + stray), null,
                    exit, output.stderr(), null);
        }
    }

    static BridgeException.Kind kindOf(String engineKind) {
        switch (engineKind) {
            case "input":
                return BridgeException.Kind.INPUT;
            case "cancelled":
                return BridgeException.Kind.CANCELLED;
            case "environment":
                return BridgeException.Kind.ENVIRONMENT;
            case "io":
            case "disk": // the engine could not write its outputs: full disk, quota, file size limit
                return BridgeException.Kind.IO;
            default:
                return BridgeException.Kind.ENGINE;
        }
    }

    static BridgeException cancelledException(EngineOutput output) {
        return new BridgeException(BridgeException.Kind.CANCELLED, "cancelled: the engine was stopped", null, null,
                output.stderr(), null);
    }

    private static void join(Thread t, long ms) throws InterruptedException {
        t.join(ms);
    }

    /**
     * Stops the running job and everything it started; {@link #run} then throws a CANCELLED exception. A runner
     * cancelled before {@code run} refuses to start.
     */
    public void cancel() {
        cancelled = true; // the running thread sees it within 50 ms and stops the tree; cancel() itself never blocks
    }

    /** The engine process while a job runs, else null (for diagnostics and tests). */
    public Process process() {
        return process;
    }

    public boolean isCancelled() {
        return cancelled;
    }
}

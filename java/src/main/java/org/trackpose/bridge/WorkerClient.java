package org.trackpose.bridge;

import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Client of a persistent engine worker ({@code trackpose serve}), which keeps models loaded between jobs so that a
 * second preview costs only the inference.
 *
 * <p>Requests go to the worker's stdin, one JSON object per line: {@code {"cmd": "run", "job": "/path/to/job"}}.
 * The worker answers on stdout with the same event lines as {@code trackpose job} and ends each request with a
 * {@code done} or an {@code error} event; it survives an error. The worker is started on first use and restarted
 * when it has died. {@link #cancel()} stops the worker (a request cannot be interrupted otherwise); the next run
 * starts a new one. {@link #close()} sends {@code {"cmd": "quit"}} and closes its stdin, then stops it if it has
 * not exited within two seconds. Events other than the four of the protocol (the worker's {@code ready}, ...) are
 * logged at DEBUG level and otherwise ignored.
 */
public final class WorkerClient implements AutoCloseable {

    private static final Object EOF = new Object();

    private final EngineCommand command;
    private Duration timeout;
    private volatile Process process;
    private Writer stdin;
    private LinkedBlockingQueue<Object> stdout;
    private final TailBuffer workerStderr = new TailBuffer(400, 64 * 1024);
    private volatile EngineOutput current;
    private volatile boolean cancelRequested;
    private int starts;

    public WorkerClient(EngineCommand command) {
        this.command = command;
    }

    /** Per-request time limit; the worker is stopped when it is exceeded. null = no limit. */
    public synchronized WorkerClient timeout(Duration limit) {
        this.timeout = limit;
        return this;
    }

    /** How many times a worker process was started (1 after the first run, more after restarts). */
    public synchronized int starts() {
        return starts;
    }

    public boolean isAlive() {
        Process p = process;
        return p != null && p.isAlive();
    }

    /** The worker process, or null when none runs (for diagnostics and tests). */
    public Process process() {
        return process;
    }

    /** Starts the worker now (otherwise the first run does), so that loading models overlaps with the user. */
    public synchronized void start() throws BridgeException {
        ensureStarted();
    }

    private void ensureStarted() throws BridgeException {
        if (process != null && process.isAlive()) {
            return;
        }
        stopProcess();
        List<String> argv = command.serveCommand();
        ProcessBuilder pb = new ProcessBuilder(argv);
        pb.environment().putAll(command.environment());
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new BridgeException(BridgeException.Kind.ENVIRONMENT, "cannot start the engine worker with "
                    + command.describe() + " (" + argv.get(0) + "): " + e.getMessage(), e);
        }
        Cleanup.register(p);
        starts++;
        workerStderr.clear();
        LinkedBlockingQueue<Object> queue = new LinkedBlockingQueue<>();
        Thread t = EngineOutput.pump(p.getInputStream(), queue::add, "trackpose-worker-stdout");
        Thread eofMarker = new Thread(() -> {
            try {
                t.join();
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
            queue.add(EOF);
        }, "trackpose-worker-eof");
        eofMarker.setDaemon(true);
        eofMarker.start();
        EngineOutput.pump(p.getErrorStream(), line -> {
            workerStderr.add(line);
            EngineOutput o = current;
            if (o != null) {
                o.onStderrLine(line);
            }
        }, "trackpose-worker-stderr");
        process = p;
        stdout = queue;
        stdin = new OutputStreamWriter(p.getOutputStream(), StandardCharsets.UTF_8);
    }

    /**
     * Runs the job in {@code job} on the worker.
     *
     * @throws BridgeException with the engine's message on an error event, the worker's stderr when it died,
     *                         or CANCELLED / TIMEOUT
     */
    public synchronized EngineResult run(JobFolder job, BridgeLogger logger) throws BridgeException {
        cancelRequested = false;
        EngineOutput output = new EngineOutput(logger);
        long start = System.nanoTime();
        ensureStarted();
        drainStale(logger);
        Map<String, Object> request = new LinkedHashMap<>();
        request.put("cmd", "run");
        request.put("job", job.path().toString());
        if (!send(request)) {
            // the worker died since the last request: one fresh start
            stopProcess();
            ensureStarted();
            if (!send(request)) {
                throw died(output, "could not send the job to the worker");
            }
        }
        current = output;
        try {
            long deadline = timeout == null || timeout.isZero() ? Long.MAX_VALUE : start + timeout.toNanos();
            while (true) {
                if (cancelRequested) {
                    stopProcess();
                    throw JobRunner.cancelledException(output);
                }
                if (System.nanoTime() > deadline) {
                    stopProcess();
                    throw new BridgeException(BridgeException.Kind.TIMEOUT, "the engine worker did not finish the "
                            + "job within " + timeout.getSeconds() + " s and was stopped", null, null,
                            output.stderr(), null);
                }
                Object item = stdout.poll(50, TimeUnit.MILLISECONDS);
                if (item == null) {
                    continue;
                }
                if (item == EOF) {
                    throw died(output, "the engine worker stopped while running the job");
                }
                EngineEvent e = output.onStdoutLine((String) item);
                if (e == null) {
                    continue;
                }
                if (e.type() == EngineEvent.Type.ERROR) {
                    JobRunner.throwOnFailure(output, null, command.describe() + " worker");
                }
                if (e.type() == EngineEvent.Type.DONE) {
                    job.requireOutputs(e.message());
                    return new EngineResult(e, output.stderr(), Duration.ofNanos(System.nanoTime() - start));
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            stopProcess();
            throw new BridgeException(BridgeException.Kind.CANCELLED, "interrupted while the worker was running",
                    null, null, output.stderr(), e);
        } finally {
            current = null;
        }
    }

    private void drainStale(BridgeLogger logger) {
        Object item;
        while ((item = stdout.poll()) != null) {
            if (item == EOF) {
                stdout.add(EOF); // keep the end marker for the request loop
                return;
            }
            if (logger != null) {
                logger.log(BridgeLogger.Level.DEBUG, "worker: " + item);
            }
        }
    }

    private boolean send(Map<String, ?> request) {
        try {
            stdin.write(Json.write(request));
            stdin.write("\n");
            stdin.flush();
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private BridgeException died(EngineOutput output, String what) {
        Process p = process;
        Integer exit = null;
        if (p != null) {
            try {
                if (p.waitFor(2, TimeUnit.SECONDS)) {
                    exit = p.exitValue();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        stopProcess();
        String tail = workerStderr.lastLines(20).trim();
        return new BridgeException(BridgeException.Kind.ENGINE, what + (exit == null ? "" : " (exit code " + exit
                + ")") + (tail.isEmpty() ? "" : ":\n" + tail), null, exit, workerStderr.text(), null);
    }

    private void stopProcess() {
        Process p = process;
        process = null;
        if (p == null) {
            return;
        }
        try {
            if (stdin != null) {
                stdin.close();
            }
        } catch (IOException ignored) {
            // worker already gone
        }
        ProcessTree.kill(p);
        Cleanup.unregister(p);
    }

    /**
     * Stops the running request: the worker and its children are stopped, the run throws CANCELLED, and the next
     * run starts a fresh worker. Never blocks; does nothing when no request is running.
     */
    public void cancel() {
        cancelRequested = true;
    }

    /** Asks the worker to exit (quit request, stdin closed) and stops it if it has not within two seconds. */
    @Override
    public synchronized void close() {
        Process p = process;
        if (p == null) {
            return;
        }
        try {
            send(Collections.singletonMap("cmd", "quit"));
            stdin.close();
            p.waitFor(2, TimeUnit.SECONDS);
        } catch (IOException ignored) {
            // already gone
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        stopProcess();
    }
}

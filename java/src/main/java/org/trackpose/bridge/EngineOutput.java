package org.trackpose.bridge;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;

/**
 * What one engine run said: events forwarded to a {@link BridgeLogger} as they come, and what a failure message
 * needs (the error event, the done event, stray stdout lines, the tail of stderr). Thread-safe.
 */
final class EngineOutput {

    private final BridgeLogger logger;
    private final TailBuffer stderr = new TailBuffer(400, 64 * 1024);
    private final TailBuffer strayStdout = new TailBuffer(50, 8 * 1024);
    private volatile EngineEvent error;
    private volatile EngineEvent done;

    EngineOutput(BridgeLogger logger) {
        this.logger = logger == null ? BridgeLogger.NONE : logger;
    }

    /** Handles one stdout line; returns the event, or null for a stray line. */
    EngineEvent onStdoutLine(String line) {
        EngineEvent e = EngineEvent.parse(line);
        if (e == null) {
            if (!line.trim().isEmpty()) {
                strayStdout.add(line);
                safeLog(BridgeLogger.Level.DEBUG, "engine stdout: " + line);
            }
            return null;
        }
        switch (e.type()) {
            case PROGRESS:
                try {
                    logger.progress(e.intField("done", 0), e.intField("total", 0), e.intField("frame", -1));
                } catch (RuntimeException ignored) {
                    // a faulty logger must not break the run
                }
                break;
            case LOG:
                safeLog(level(e.textField("level")), e.message());
                break;
            case ERROR:
                if (error == null) {
                    error = e;
                }
                safeLog(BridgeLogger.Level.ERROR, e.message());
                break;
            case DONE:
                done = e;
                break;
            default:
                safeLog(BridgeLogger.Level.DEBUG, "engine event: " + e);
        }
        return e;
    }

    void onStderrLine(String line) {
        stderr.add(line);
        safeLog(BridgeLogger.Level.DEBUG, line);
    }

    private void safeLog(BridgeLogger.Level level, String message) {
        try {
            logger.log(level, message);
        } catch (RuntimeException ignored) {
            // a faulty logger must not break the run
        }
    }

    static BridgeLogger.Level level(String name) {
        switch (name.toLowerCase(java.util.Locale.ROOT)) {
            case "debug":
                return BridgeLogger.Level.DEBUG;
            case "warning":
            case "warn":
                return BridgeLogger.Level.WARNING;
            case "error":
            case "critical":
                return BridgeLogger.Level.ERROR;
            default:
                return BridgeLogger.Level.INFO;
        }
    }

    EngineEvent error() {
        return error;
    }

    EngineEvent done() {
        return done;
    }

    String stderr() {
        return stderr.text();
    }

    String stderrTail(int lines) {
        return stderr.lastLines(lines);
    }

    String strayStdout() {
        return strayStdout.text();
    }

    /** Forget the previous request's events (persistent worker); stderr is kept, it is the worker's history. */
    void resetEvents() {
        error = null;
        done = null;
    }

    /** A daemon thread that reads {@code in} line by line (UTF-8) into {@code sink} until the stream ends. */
    static Thread pump(InputStream in, Consumer<String> sink, String name) {
        Thread t = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    sink.accept(line);
                }
            } catch (IOException ignored) {
                // stream closed because the process was killed
            }
        }, name);
        t.setDaemon(true);
        t.start();
        return t;
    }
}

package org.trackpose.bridge;

/**
 * Where the bridge reports what the engine is doing. Called from the bridge's reader threads, so implementations
 * must be thread-safe (the TrackMate adapter forwards to TrackMate's {@code Logger}).
 */
public interface BridgeLogger {

    enum Level {
        /** Engine stderr lines and stray stdout lines: details for a log window, not the status bar. */
        DEBUG,
        INFO,
        WARNING,
        ERROR
    }

    /** A log line; {@code message} never ends with a newline. */
    void log(Level level, String message);

    /**
     * Progress after a frame: {@code done} of {@code total} frames finished, the last being the caller's frame
     * number {@code frame} (-1 if the engine did not say).
     */
    default void progress(int done, int total, int frame) {
    }

    /** A logger that drops everything. */
    BridgeLogger NONE = (level, message) -> {
    };
}

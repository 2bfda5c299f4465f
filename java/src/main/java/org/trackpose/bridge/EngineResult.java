package org.trackpose.bridge;

import java.time.Duration;

/** What a successful engine run reported: its {@code done} event, its stderr and how long it took. */
public final class EngineResult {

    private final EngineEvent done;
    private final String stderr;
    private final Duration elapsed;

    EngineResult(EngineEvent done, String stderr, Duration elapsed) {
        this.done = done;
        this.stderr = stderr;
        this.elapsed = elapsed;
    }

    /** Objects the engine says it found, or -1 when its done event did not say. */
    public int objects() {
        return done.intField("objects", -1);
    }

    /** Frames the engine says it processed, or -1 when its done event did not say. */
    public int frames() {
        return done.intField("frames", -1);
    }

    public EngineEvent doneEvent() {
        return done;
    }

    /** The tail of the engine's stderr (human-readable log). */
    public String stderr() {
        return stderr;
    }

    public Duration elapsed() {
        return elapsed;
    }
}

package org.trackpose.bridge;

/**
 * A bridge failure, carrying a message a user can act on (the engine's own message where there is one).
 *
 * <p>Every way a detection can fail ends here: no Python, a wrong environment, the engine crashing, an error event,
 * missing or partial outputs, a cancelled or timed-out run. A caller never turns one of these into "zero objects".
 */
public class BridgeException extends Exception {

    private static final long serialVersionUID = 1L;

    /** What kind of failure; {@link #engineKind()} keeps the engine's own tag when there is one. */
    public enum Kind {
        /** Python, conda, the environment or trackpose itself cannot be found or started. */
        ENVIRONMENT,
        /** Settings or input that cannot be used as given (found before or by the engine). */
        INPUT,
        /** The engine reported an error event or exited non-zero. */
        ENGINE,
        /** The engine claimed success but outputs are missing, partial or unreadable. */
        OUTPUT,
        /** Writing the job folder failed (full disk, permissions). */
        IO,
        /** The user cancelled the run. */
        CANCELLED,
        /** The run took longer than its time limit. */
        TIMEOUT
    }

    private final Kind kind;
    private final String engineKind;
    private final Integer exitCode;
    private final String stderr;

    public BridgeException(Kind kind, String message) {
        this(kind, message, null, null, null, null);
    }

    public BridgeException(Kind kind, String message, Throwable cause) {
        this(kind, message, null, null, null, cause);
    }

    public BridgeException(Kind kind, String message, String engineKind, Integer exitCode, String stderr,
            Throwable cause) {
        super(message, cause);
        this.kind = kind;
        this.engineKind = engineKind;
        this.exitCode = exitCode;
        this.stderr = stderr == null ? "" : stderr;
    }

    public Kind kind() {
        return kind;
    }

    /** The {@code kind} field of the engine's error event ("input", "model", ...), or null. */
    public String engineKind() {
        return engineKind;
    }

    /** The engine's exit code, or null when it did not exit by itself (or never started). */
    public Integer exitCode() {
        return exitCode;
    }

    /** The tail of what the engine wrote on stderr (bounded), empty if nothing. */
    public String stderr() {
        return stderr;
    }
}

package org.trackpose.bridge;

import java.util.Collections;
import java.util.List;

/** The answer of {@link PythonEnvironment#check}: what is wrong (or the version found), in a user's words. */
public final class EnvironmentCheck {

    public enum Status {
        /** trackpose answered with its version. */
        OK,
        /** No python executable, no venv folder, or a venv / conda env without python. */
        PYTHON_NOT_FOUND,
        /** No conda / mamba executable found or given. */
        CONDA_NOT_FOUND,
        /** The conda environment name does not exist. */
        ENV_NOT_FOUND,
        /** Python runs but trackpose is not installed there. */
        TRACKPOSE_MISSING,
        /** trackpose is installed but one of its dependencies is missing. */
        DEPENDENCY_MISSING,
        /** No answer within the time limit. */
        TIMEOUT,
        /** Anything else; the message carries the output. */
        FAILED
    }

    private final Status status;
    private final String message;
    private final String version;
    private final List<String> command;
    private final String output;

    EnvironmentCheck(Status status, String message, String version, List<String> command, String output) {
        this.status = status;
        this.message = message;
        this.version = version;
        this.command = Collections.unmodifiableList(command);
        this.output = output == null ? "" : output;
    }

    public boolean ok() {
        return status == Status.OK;
    }

    public Status status() {
        return status;
    }

    /** One or two sentences saying what was found or what is wrong and what to do. */
    public String message() {
        return message;
    }

    /** trackpose's version when {@link #ok()}, else null. */
    public String version() {
        return version;
    }

    /** The argv that was run (empty when the check stopped before running anything). */
    public List<String> command() {
        return command;
    }

    /** What the command printed (stdout then stderr, bounded). */
    public String output() {
        return output;
    }

    /** Throws a {@link BridgeException} of kind ENVIRONMENT carrying the message unless {@link #ok()}. */
    public void requireOk() throws BridgeException {
        if (!ok()) {
            throw new BridgeException(BridgeException.Kind.ENVIRONMENT, message, null, null, output, null);
        }
    }

    @Override
    public String toString() {
        return status + ": " + message;
    }
}

package org.trackpose.bridge;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/** Stopping a child process together with everything it started (conda run -> python -> workers). */
public final class ProcessTree {

    private ProcessTree() {
    }

    /** How long processes get to exit after a polite request (SIGTERM) before they are killed. */
    public static final Duration DEFAULT_GRACE = Duration.ofSeconds(2);

    /**
     * Stops {@code process} and all its descendants: first a polite request (SIGTERM on POSIX, so that the engine
     * can remove its partial outputs), then, after {@code grace}, a forced kill of whatever is still alive.
     * Descendants are collected before the parent goes, since an orphan is no longer listed as a descendant.
     * Returns once the process has exited (or after a bounded wait).
     */
    public static void kill(Process process, Duration grace) {
        if (process == null) {
            return;
        }
        Set<ProcessHandle> tree = new LinkedHashSet<>();
        collect(process.toHandle(), tree);
        for (ProcessHandle h : tree) {
            h.destroy();
        }
        process.destroy();
        long deadline = System.nanoTime() + grace.toNanos();
        while (System.nanoTime() < deadline && (process.isAlive() || anyAlive(tree))) {
            collect(process.toHandle(), tree); // children started while we asked
            sleep(20);
        }
        collect(process.toHandle(), tree);
        for (ProcessHandle h : tree) {
            if (h.isAlive()) {
                h.destroyForcibly();
            }
        }
        if (process.isAlive()) {
            process.destroyForcibly();
        }
        try {
            process.waitFor(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (anyAlive(tree) && System.nanoTime() < until) {
            sleep(20);
        }
    }

    public static void kill(Process process) {
        kill(process, DEFAULT_GRACE);
    }

    private static void collect(ProcessHandle root, Set<ProcessHandle> into) {
        List<ProcessHandle> found = new ArrayList<>();
        try {
            root.descendants().forEach(found::add);
            for (ProcessHandle h : new ArrayList<>(into)) {
                h.descendants().forEach(found::add);
            }
        } catch (RuntimeException ignored) {
            // a process that vanished while listed
        }
        into.addAll(found);
    }

    private static boolean anyAlive(Set<ProcessHandle> handles) {
        for (ProcessHandle h : handles) {
            if (h.isAlive()) {
                return true;
            }
        }
        return false;
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}

package org.trackpose.bridge;

import ij.ImagePlus;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What one job found: the objects of each frame sent (an empty list is a frame where nothing was found). */
public final class Detections {

    private final Map<Integer, List<DetectedObject>> byFrame;
    private final int dropped;
    private final int listed;
    private final ImagePlus labels;

    Detections(Map<Integer, List<DetectedObject>> byFrame, int dropped, int listed, ImagePlus labels) {
        Map<Integer, List<DetectedObject>> copy = new LinkedHashMap<>();
        byFrame.forEach((k, v) -> copy.put(k, Collections.unmodifiableList(new ArrayList<>(v))));
        this.byFrame = Collections.unmodifiableMap(copy);
        this.dropped = dropped;
        this.listed = listed;
        this.labels = labels;
    }

    /** The caller's frame numbers, in the order they were sent. */
    public List<Integer> frames() {
        return new ArrayList<>(byFrame.keySet());
    }

    /** Objects of one frame; throws for a frame that was not part of the job. */
    public List<DetectedObject> objects(int frame) {
        List<DetectedObject> l = byFrame.get(frame);
        if (l == null) {
            throw new IllegalArgumentException("frame " + frame + " was not part of this job " + frames());
        }
        return l;
    }

    /** Every object, frame after frame. */
    public List<DetectedObject> all() {
        List<DetectedObject> all = new ArrayList<>();
        byFrame.values().forEach(all::addAll);
        return all;
    }

    public int count() {
        int n = 0;
        for (List<DetectedObject> l : byFrame.values()) {
            n += l.size();
        }
        return n;
    }

    /** Objects left out because their outline had fewer than 3 vertices or no area. */
    public int dropped() {
        return dropped;
    }

    /** Objects shapes.json lists (what the engine's done event counts), before any was left out here. */
    public int listed() {
        return listed;
    }

    /** The label image as read from labels.tif (in the crop's pixel grid; T = frames sent, Z as the input). */
    public ImagePlus labels() {
        return labels;
    }
}

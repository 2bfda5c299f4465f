package fiji.plugin.trackmate;

/** API stub (TrackMate 8.1.6, fiji/plugin/trackmate/Model.java): passed through to the detection preview only. */
public class Model {

    public Model() {
    }
}

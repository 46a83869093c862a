// Template projection: rename the class, the projection name and the plugin
// name, then fill in handle_batch. See docs/plugins.md.
#include <orchestratord/projection.hpp>

namespace {

class MyProjection : public orchestratord::Projection {
public:
    static orchestratord::ProjectionInfo describe() {
        return {
            .name = "my_projection",
            .mode = orchestratord::Mode::at_least_once,
            .event_types = {},  // empty: every event type
        };
    }

    explicit MyProjection(const orchestratord::Context& ctx) : ctx_(ctx) {}

    void handle_batch(const orchestratord::Batch& batch) override {
        ctx_.log_debug("handling " + std::to_string(batch.size()) + " events");
    }

private:
    orchestratord::Context ctx_;
};

}  // namespace

ORCHESTRATORD_PLUGIN("my_plugin", "0.1.0", MyProjection)

#pragma once
// A loaded shared object and its validated descriptor. Shared by every object
// created from it, so the library is unloaded only after the last projection
// instance made by it has been destroyed.
#include <orchestratord/plugin_abi.h>

#include <memory>
#include <string>

namespace orchestratord::plugins {

class PluginLibrary {
public:
    PluginLibrary(std::string file, std::shared_ptr<void> handle, const orch_plugin_desc* descriptor)
        : file_(std::move(file)), handle_(std::move(handle)), descriptor_(descriptor) {}

    const std::string& file() const { return file_; }
    const orch_plugin_desc& descriptor() const { return *descriptor_; }
    // The same loaded code (not just the same file name or version string).
    bool same_code_as(const PluginLibrary& other) const { return descriptor_ == other.descriptor_; }
    // The projection's descriptor, or nullptr when the plugin does not declare it.
    const orch_projection_desc* projection(const std::string& name) const;

private:
    std::string file_;
    std::shared_ptr<void> handle_;  // boost::dll::shared_library, type-erased to keep Boost out of headers
    const orch_plugin_desc* descriptor_;
};

}  // namespace orchestratord::plugins

// swift-tools-version:6.1
// KnowTune: LoRA fine-tuning of LLaMA-family models, data-parallel over MPI, and the KnowTuning method.
// Layering (one direction, enforced by SwiftPM): C shims (MPI, HDF5, bf16, quantized blocks, element-wise passes) → KnowTuneTensor → KnowTuneModel
// → KnowTuneData → KnowTuneDistributed (on Model: collectives, node-shared weights, batch sharding) and
// KnowTuneCheckpoint (on Tensor) → KnowTuneTraining (the loop and its objectives; on Data, Distributed, Checkpoint);
// KnowTuneGeneration (on Data) and KnowTuneEvaluation (on Tensor, for its errors) → KnowTunePrediction (on Generation, Evaluation,
// Distributed; not on Training), KnowTuneKnowledge and KnowTuneServing (the OpenAI-compatible HTTP server, on Generation
// and Hummingbird) → KnowTuneFuzzing (fuzz targets of every outside-data parser, on Knowledge, Serving and Training for
// the configuration file) → executables.
import PackageDescription

// Numeric kernels live behind unsafe pointers; -Ounchecked drops the remaining overflow traps there.
let kernelSettings: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]

let package = Package(
    name: "KnowTune",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "knowtune", targets: ["knowtune"]),
        .executable(name: "knowtune-bench", targets: ["knowtune-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        // The API server; its default traits pull swift-configuration, which KnowTune does not use.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
    ],
    targets: [
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5-serial", providers: [.apt(["libhdf5-dev"])]),
        // Accessors for C macros Swift cannot import, one shim per library so that checkpoints do not need mpi.h.
        .target(name: "CKnowTuneMPIShims", dependencies: ["CMPI"]),
        .target(name: "CKnowTuneHDF5Shims", dependencies: ["CHDF5"]),
        // bf16 frozen-weight products (AVX-512 BF16 with a run-time check, sgemm fallback); see its header.
        .target(name: "CKnowTuneBF16", dependencies: ["COpenBLAS"], linkerSettings: [.linkedLibrary("pthread")]),
        // ggml's quantized block formats and the products of a quantized frozen base; see its header.
        .target(name: "CKnowTuneQuant", dependencies: ["COpenBLAS"], linkerSettings: [.linkedLibrary("pthread")]),
        // The step's exp-heavy element-wise passes (SwiGLU, softmax, the head's Σ exp), AVX2 with a libm fallback.
        .target(name: "CKnowTuneElementwise", linkerSettings: [.linkedLibrary("pthread"), .linkedLibrary("m")]),

        .target(name: "KnowTuneTensor", dependencies: ["COpenBLAS", "CKnowTuneBF16", "CKnowTuneQuant", "CKnowTuneElementwise"], swiftSettings: kernelSettings),
        .target(name: "KnowTuneModel", dependencies: ["KnowTuneTensor"], swiftSettings: kernelSettings),
        .target(name: "KnowTuneData", dependencies: ["KnowTuneModel"]),
        .target(name: "KnowTuneDistributed", dependencies: ["CMPI", "CKnowTuneMPIShims", "KnowTuneTensor", "KnowTuneModel"]),
        .target(name: "KnowTuneCheckpoint", dependencies: ["CHDF5", "CKnowTuneHDF5Shims", "KnowTuneTensor"]),
        .target(name: "KnowTuneTraining",
                dependencies: ["KnowTuneModel", "KnowTuneData", "KnowTuneDistributed", "KnowTuneCheckpoint", "Yams"],
                swiftSettings: kernelSettings),
        .target(name: "KnowTuneGeneration", dependencies: ["KnowTuneModel", "KnowTuneTensor", "KnowTuneData", "COpenBLAS"],
                swiftSettings: kernelSettings),
        .target(name: "KnowTuneEvaluation", dependencies: ["KnowTuneTensor"]),
        .target(name: "KnowTuneKnowledge",
                dependencies: ["KnowTuneModel", "KnowTuneData", "KnowTuneDistributed", "KnowTuneTensor", "KnowTuneEvaluation", "KnowTuneGeneration"]),
        .target(name: "KnowTunePrediction",
                dependencies: ["KnowTuneGeneration", "KnowTuneEvaluation", "KnowTuneDistributed", "KnowTuneData", "KnowTuneModel",
                               "KnowTuneTensor"]),
        .target(name: "KnowTuneServing",
                dependencies: ["KnowTuneGeneration", "KnowTuneData", "KnowTuneModel", "KnowTuneTensor",
                               .product(name: "Hummingbird", package: "hummingbird")]),

        .executableTarget(
            name: "knowtune",
            dependencies: [
                "KnowTuneModel", "KnowTuneData", "KnowTuneEvaluation", "KnowTuneTraining", "KnowTuneDistributed", "KnowTunePrediction",
                "KnowTuneKnowledge", "KnowTuneGeneration", "KnowTuneServing", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "knowtune-bench", dependencies: ["KnowTuneModel", "KnowTuneData", "KnowTuneTraining"],
                          swiftSettings: kernelSettings),

        .executableTarget(name: "knowtune-genbench", dependencies: ["KnowTuneGeneration", "KnowTuneModel"],
                          swiftSettings: kernelSettings),

        .executableTarget(name: "knowtune-bf16bench", dependencies: ["KnowTuneTensor"], swiftSettings: kernelSettings),

        // Fuzz targets of every parser that reads outside data; launch/fuzz.sh builds knowtune-fuzz with libFuzzer.
        .target(name: "KnowTuneFuzzing",
                dependencies: ["KnowTuneModel", "KnowTuneData", "KnowTuneCheckpoint", "KnowTuneEvaluation", "KnowTuneGeneration",
                               "KnowTuneKnowledge", "KnowTuneServing", "KnowTuneTensor", "KnowTuneTraining"]),
        .executableTarget(name: "knowtune-fuzz", dependencies: ["KnowTuneFuzzing"]),

        .executableTarget(name: "knowtune-testkit", dependencies: ["KnowTuneDistributed", "KnowTuneCheckpoint", "KnowTuneTensor", "KnowTuneModel"]),

        .target(name: "KnowTuneTestSupport", dependencies: ["KnowTuneTensor", "KnowTuneModel", "KnowTuneDistributed"], path: "Tests/KnowTuneTestSupport"),
        .testTarget(name: "KnowTuneTensorTests", dependencies: ["KnowTuneTensor", "KnowTuneTestSupport"]),
        .testTarget(name: "KnowTuneModelTests",
                    dependencies: ["KnowTuneTensor", "KnowTuneModel", "KnowTuneData", "KnowTuneTestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "KnowTuneGenerationTests",
                    dependencies: ["KnowTuneGeneration", "KnowTuneModel", "KnowTuneTensor", "KnowTuneData", "KnowTuneTestSupport"]),
        .testTarget(name: "KnowTuneTrainingTests",
                    dependencies: ["KnowTuneTraining", "KnowTuneModel", "KnowTuneData", "KnowTuneTensor", "KnowTuneTestSupport"]),
        .testTarget(name: "KnowTuneDataTests", dependencies: ["KnowTuneData", "KnowTuneModel", "KnowTuneTensor", "KnowTuneTestSupport"]),
        .testTarget(name: "KnowTuneEvaluationTests", dependencies: ["KnowTuneEvaluation", "KnowTuneTensor"], exclude: ["Fixtures"]),
        .testTarget(name: "KnowTunePredictionTests", dependencies: ["KnowTunePrediction", "KnowTuneTestSupport"]),
        // The command-line contract: `knowtune` run as users run it (bad input, export), 1 rank and under mpirun.
        .testTarget(name: "KnowTuneCLITests", dependencies: ["KnowTuneModel", "KnowTuneTensor", "KnowTuneTestSupport"]),
        .testTarget(name: "KnowTuneDistributedTests", dependencies: ["KnowTuneDistributed", "KnowTuneTensor", "KnowTuneTestSupport"]),
        .testTarget(name: "KnowTuneCheckpointTests", dependencies: ["KnowTuneCheckpoint", "KnowTuneTensor", "KnowTuneTestSupport"]),
        .testTarget(name: "KnowTuneLaunchTests", dependencies: ["KnowTuneModel", "KnowTuneTensor", "KnowTuneTestSupport"]),
        .testTarget(name: "KnowTuneFuzzingTests", dependencies: ["KnowTuneFuzzing", "KnowTuneTestSupport"]),
        .testTarget(name: "KnowTuneServingTests",
                    dependencies: ["KnowTuneServing", "KnowTuneKnowledge", "KnowTuneGeneration", "KnowTuneModel", "KnowTuneData",
                                   "KnowTuneTensor", "KnowTuneTestSupport"]),
        .testTarget(name: "KnowTuneKnowledgeTests",
                    dependencies: ["KnowTuneKnowledge", "KnowTuneGeneration", "KnowTuneModel", "KnowTuneData", "KnowTuneDistributed", "KnowTuneTensor",
                                   "KnowTuneTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)

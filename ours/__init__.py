"""The paper's method: ShuffleNet-V2 with local and global enhancement modules, trained on label
distributions from a ResNet-50 generator. Importing this package registers its variants."""
